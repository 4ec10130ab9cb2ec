"""The website's configuration, checked without building it.

The citation metadata agrees everywhere it is written, the "How to cite" entries are
generated from it, the API page lists every module, MathJax is served from the site,
and the GitHub Actions workflow is valid (checked offline against the workflow schema
bundled with ``check-jsonschema``). The built site itself is tested in a browser by
``tests/browser`` (``scripts/browser_test.sh``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHAPTER = r"^book/\d\d-"  # chapter pages; book/_ext/llmscratch_book.py uses the same pattern


def _load_extension():
    spec = importlib.util.spec_from_file_location(
        "llmscratch_book", ROOT / "book" / "_ext" / "llmscratch_book.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ext = _load_extension()


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


@pytest.fixture(scope="module")
def cff() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


@pytest.fixture(scope="module")
def cite():
    return ext.BookCitation.from_cff(ROOT / "CITATION.cff")


# --------------------------------------------------------------------------- citation


def test_citation_file_is_complete(cff):
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version", "date-released", "license",
                "repository-code", "url"):
        assert cff.get(key), f"CITATION.cff lacks {key}"
    for author in cff["authors"]:
        assert "name" in author or {"family-names", "given-names"} <= set(author)


def test_citation_agrees_with_the_package_and_the_book(cff, config):
    import llmscratch

    assert cff["version"] == llmscratch.__version__
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{cff["version"]}"' in pyproject
    assert cff["title"] == config["title"]
    assert str(cff["date-released"])[:4] == str(config["copyright"])


def test_repository_written_once_and_consistently(cff, config):
    repo = config["repository"]["url"]
    assert cff["repository-code"] == repo
    owner, name = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", repo).groups()
    assert cff["url"] == f"https://{owner}.github.io/{name}/"  # GitHub Pages of that repository
    assert config["repository"]["branch"] == "main"
    # The launch buttons take the repository from repository.url: no second copy.
    assert "github.com" not in json.dumps(config["launch_buttons"])


def test_chapter_bibtex(cite):
    entry = cite.chapter_bibtex(3, "Byte-pair encoding from scratch", "book/03-bpe")
    assert entry.startswith("@incollection{llmscratch2026ch3,\n")
    assert entry.count("{") == entry.count("}")
    fields = dict(re.findall(r"^  (\w+)\s*= \{(.*)\},?$", entry, flags=re.M))
    assert fields["title"] == "Byte-pair encoding from scratch"
    assert fields["booktitle"] == "LLM from Scratch"
    assert fields["chapter"] == "3"
    assert fields["author"] == "{The LLM from Scratch authors}"  # an entity: braced
    assert fields["url"] == "https://llm-from-scratch.github.io/llm-from-scratch/book/03-bpe.html"
    assert fields["version"] == cite.version
    text = cite.chapter_text(3, "Byte-pair encoding from scratch", "book/03-bpe")
    assert "Chapter 3 of LLM from Scratch" in text and fields["url"] in text


def test_book_bibtex(cite):
    entry = cite.book_bibtex()
    assert entry.startswith("@book{llmscratch2026,")
    assert entry.count("{") == entry.count("}")
    assert cite.repository in entry


def test_person_authors_are_not_braced(tmp_path):
    path = tmp_path / "CITATION.cff"
    path.write_text(
        (ROOT / "CITATION.cff").read_text().replace(
            '  - name: "The LLM from Scratch authors"',
            '  - family-names: Lovelace\n    given-names: Ada\n  - name: "Team"',
        )
    )
    entry = ext.BookCitation.from_cff(path).book_bibtex()
    assert "author  = {Lovelace, Ada and {Team}}" in entry


def test_incomplete_citation_file_is_an_error(tmp_path):
    path = tmp_path / "CITATION.cff"
    path.write_text(re.sub(r"^url:.*$", "", (ROOT / "CITATION.cff").read_text(), flags=re.M))
    with pytest.raises(ext.ExtensionError, match="url"):
        ext.BookCitation.from_cff(path)
    with pytest.raises(ext.ExtensionError, match="not found"):
        ext.BookCitation.from_cff(tmp_path / "missing.cff")


# --------------------------------------------------------------------------- pages


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_toc_pages_exist_and_chapter_names_are_stable():
    for name in _toc_files():
        assert (ROOT / f"{name}.md").is_file(), name
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        chapters = [c["file"] for c in part["chapters"]]
        if any(re.match(CHAPTER, c) for c in chapters):
            assert part.get("numbered") is True, f"part {part['caption']} is not numbered"
    for name in ("book/notation", "book/api", "book/bibliography"):
        assert name in _toc_files()


SHOWN_LINE_LIMIT = 88  # characters: wider lines need a horizontal scrollbar in the column


def _shown_code_lines(page: Path):
    """(line number, text) of the code a reader sees: cells not tagged remove-cell/-input,
    without their YAML metadata block (alt texts and captions are not code)."""
    lines = page.read_text().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("```{code-cell}"):
            j = i + 1
            header = []
            if j < len(lines) and lines[j] == "---":  # a YAML block up to the next ---
                j += 1
                while lines[j] != "---":
                    header.append(lines[j])
                    j += 1
                j += 1
            while j < len(lines) and lines[j].startswith(":"):  # short-form options
                header.append(lines[j])
                j += 1
            end = j
            while not lines[end].startswith("```"):
                end += 1
            if not any(t in " ".join(header) for t in ("remove-cell", "remove-input")):
                yield from ((n + 1, lines[n]) for n in range(j, end))
            i = end
        i += 1


def test_shown_code_fits_the_page_column():
    pages = sorted((ROOT / "book").glob("[0-9][0-9]-*.md"))
    assert pages
    long = [f"{p.name}:{n}: {len(text)} characters" for p in pages
            for n, text in _shown_code_lines(p) if len(text) > SHOWN_LINE_LIMIT]
    assert not long, "\n".join(long)


def test_api_page_documents_every_module():
    text = ext.api_markdown("llmscratch")
    package = ROOT / "llmscratch"
    modules = sorted(  # every module, subpackages' too (llmscratch.recipes.pretrain)
        "llmscratch." + ".".join((p.parent.relative_to(package) / p.stem).parts).removesuffix(".__init__")
        for p in package.rglob("*.py")
        if not p.stem.startswith("_") or p.name == "__init__.py" and p.parent != package
    )
    assert re.findall(r"^\.\. automodule:: (\S+)$", text, flags=re.M) == modules
    assert ext.API_MARKER in (ROOT / "book" / "api.md").read_text()


def test_mathjax_is_served_by_the_site(config):
    path = config["sphinx"]["config"]["mathjax_path"]
    assert "://" not in path and not path.startswith("//")
    package = json.loads((ROOT / "scripts" / "mathjax" / "package.json").read_text())
    lock = json.loads((ROOT / "scripts" / "mathjax" / "package-lock.json").read_text())
    pinned = package["dependencies"]["mathjax"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "pin an exact MathJax version"
    locked = lock["packages"]["node_modules/mathjax"]
    assert locked["version"] == pinned and locked["integrity"].startswith("sha512-")
    assert Path(path).name == ext.MATHJAX_COMPONENT


def test_colab_setup_cell_installs_from_the_repository():
    cell = ext._setup_cell("https://github.com/o/r", "main")
    source = cell["source"]
    assert "https://raw.githubusercontent.com/o/r/main/requirements.txt" in source
    assert "git+https://github.com/o/r@main" in source
    compile(source.replace("get_ipython()", "ip"), "<cell>", "exec")  # valid Python


# --------------------------------------------------------------------------- workflow


def _lint(path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    return subprocess.run(
        [exe, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, timeout=60,
    )


def test_workflows_exist():
    assert [p.name for p in WORKFLOWS] == ["book.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid(path):
    result = _lint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_linter_catches_mistakes(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOWS[0].read_text().replace("runs-on:", "runs_on:", 1))
    assert _lint(broken).returncode != 0


def test_workflow_builds_tests_and_deploys_the_site():
    flow = yaml.safe_load(WORKFLOWS[0].read_text())
    steps = flow["jobs"]["build"]["steps"]
    runs = [s.get("run", "") for s in steps]
    order = [i for r in ("scripts/test.sh", "scripts/book.sh", "scripts/browser_test.sh")
             for i, run in enumerate(runs) if run.strip() == r]
    assert len(order) == 3 and order == sorted(order)
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert any(s["with"]["path"] == "_build/html" for s in uploads)
    deploy = flow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    publish = [s for s in deploy["steps"] if "gh-pages" in s.get("uses", "")]
    assert publish and publish[0]["with"]["publish_branch"] == "gh-pages"
