"""Tests for llmscratch.data: the registry, argument checks, the CLI and names cleaning
(unit tests plus the real mirror file). The download machinery under faults is tested in
test_downloads.py. No test touches the internet."""

from __future__ import annotations

import pytest

from llmscratch import data
from llmscratch.data import clean_names, fetch

# --------------------------------------------------------------------------- the registry


def test_every_registry_entry_matches_its_mirror_file(mirror_dir):
    assert set(data.REGISTRY) == {
        "tinyshakespeare", "indian_names_raw", "names_en", "gpt2_tiktoken",
        "instruction_data", "instruction_data_with_preference", "the_verdict", "sms_spam",
    }
    for name, source in data.REGISTRY.items():
        assert source.name == name
        assert source.url.startswith("https://")
        assert data.sha256_file(mirror_dir / source.filename) == source.sha256, name
        assert (mirror_dir / source.filename).stat().st_size == source.size, name


def test_the_registry_is_read_from_its_data_file():
    # a data file, not code: a new dataset leaves earlier chapters' cache keys alone
    assert data._REGISTRY_FILE.name == "registry.json"
    assert data._load_registry() == data.REGISTRY


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match="unknown dataset name 'nope'; known names: gpt2_tiktoken, .*the_verdict"):
        fetch("nope")


@pytest.mark.parametrize("name", [None, 3, b"the_verdict", ["the_verdict"]])
def test_name_must_be_a_str(name):
    with pytest.raises(TypeError, match="name must be a str"):
        fetch(name)
    with pytest.raises(TypeError, match="name must be a str"):
        data.load_text(name)


def test_package_imports_from_data_still_work():
    from llmscratch import checkpoint  # imports default_cache_dir from data

    assert checkpoint.default_cache_dir is data.default_cache_dir
    for name in data.__all__:
        assert hasattr(data, name), name


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "a"))
    assert data.default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv(data.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == tmp_path / "xdg" / "llmscratch"


# --------------------------------------------------------------------------- the CLI


def test_cli_list_and_fetch(capsys, mirror_dir):
    assert data.main(["list"]) == 0
    assert "gpt2_tiktoken" in capsys.readouterr().out
    assert data.main(["fetch", "the_verdict", "names_en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("the_verdict") and "20,479 bytes" in lines[0]
    with pytest.raises(SystemExit):
        data.main(["fetch", "nope"])


# --------------------------------------------------------------------------- names cleaning


def test_clean_names_strips_lowercases_and_keeps_order():
    names, report = clean_names(["  Ravi\r", "ASHA", "zoe"])
    assert names == ["ravi", "asha", "zoe"]
    assert (report.total, report.kept) == (3, 3)


def test_clean_names_drops_each_reason():
    raw = ["al0k", "s/o", "amit,", "", "a", "x" * 16, "Ravi", "ravi ", "asha", "RAVI"]
    names, report = clean_names(raw, min_len=2, max_len=15)
    assert names == ["ravi", "asha"]
    assert report.dropped_non_alpha == 3
    assert report.dropped_too_short == 2  # "" and "a"
    assert report.dropped_too_long == 1
    assert report.dropped_duplicate == 2
    assert report.examples["non_alpha"] == ("al0k", "s/o", "amit,")
    assert report.examples["duplicate"] == ("ravi", "RAVI")
    dropped = (report.dropped_non_alpha + report.dropped_too_short
               + report.dropped_too_long + report.dropped_duplicate)
    assert report.kept + dropped == report.total == len(raw)


def test_clean_names_bounds_are_inclusive_and_examples_capped():
    names, report = clean_names(["ab", "abcd", "abcde"] + ["q1"] * 9, min_len=2, max_len=4)
    assert names == ["ab", "abcd"]
    assert report.dropped_too_long == 1
    assert report.dropped_non_alpha == 9 and len(report.examples["non_alpha"]) == 5


def test_clean_names_rejects_non_ascii_letters():
    names, report = clean_names(["josé", "zoë", "jose"])
    assert names == ["jose"] and report.dropped_non_alpha == 2


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"min_len": 0}, ValueError, "min_len must be >= 1"),
    ({"min_len": 5, "max_len": 4}, ValueError, r"max_len must be >= min_len \(5\), got 4"),
    ({"min_len": 1.5}, TypeError, "min_len must be an int"),
    ({"min_len": True}, TypeError, "min_len must be an int"),
    ({"max_len": "15"}, TypeError, "max_len must be an int"),
    ({"max_len": None}, TypeError, "max_len must be an int"),
])
def test_clean_names_rejects_bad_bounds(kwargs, error, match):
    with pytest.raises(error, match=match):
        clean_names(["asha"], **kwargs)


@pytest.mark.parametrize(("raw", "match"), [
    ("asha", "raw must be an iterable of names"),  # not read letter by letter
    (b"asha", "raw must be an iterable of names"),
    (5, "raw must be an iterable of names"),
    (None, "raw must be an iterable of names"),
    (["asha", 3], r"raw\[1\] must be a str, got int"),
    ((n for n in ["asha", None]), r"raw\[1\] must be a str, got NoneType"),
])
def test_clean_names_rejects_what_is_not_a_list_of_names(raw, match):
    with pytest.raises(TypeError, match=match):
        clean_names(raw)


def test_clean_names_takes_any_iterable():
    assert clean_names(iter(["Asha"]))[0] == clean_names(("Asha",))[0] == ["asha"]
    assert clean_names([])[1].total == 0


def test_load_indian_names_checks_bounds_before_fetching(monkeypatch):
    def no_fetch(*args, **kwargs):
        raise AssertionError("fetched despite bad bounds")

    monkeypatch.setattr(data, "fetch", no_fetch)
    with pytest.raises(ValueError, match="max_len"):
        data.load_indian_names(min_len=5, max_len=4)
    with pytest.raises(TypeError, match="min_len"):
        data.load_indian_names(min_len="2")


def test_load_indian_names_on_the_real_file(mirror_dir):
    names, report = data.load_indian_names(mirror=mirror_dir)
    assert len(names) > 6000
    assert all(name.isascii() and name.isalpha() and name.islower() for name in names)
    assert len(set(names)) == len(names)
    assert report.total == 6486 and report.dropped_non_alpha == 19

    # Agrees with the derived file, which applied the same rules without a length bound.
    reference = (mirror_dir / "indian_names.txt").read_text(encoding="utf-8").split()
    unbounded, _ = data.load_indian_names(mirror=mirror_dir, max_len=100)
    assert unbounded == reference
