"""The pages' table helper: a DataFrame whose HTML shows code and math, and clear errors."""

import pandas as pd
import pytest

from llmscratch.pages import cell_html, table


def test_table_is_a_dataframe_with_the_given_cells():
    t = table(["model", "loss (nats)"], [("bigram", "2.454"), ("MLP", "2.086")])
    assert isinstance(t, pd.DataFrame) and list(t.columns) == ["model", "loss (nats)"]
    assert t.shape == (2, 2) and t.iloc[1, 0] == "MLP"
    assert isinstance(t.head(1), type(t))  # slicing keeps the HTML rendering


def test_table_html_has_no_index_and_renders_code_and_math():
    html = table(["part", "formula"], [("token embedding `wte`", "$VC$"), ("a < b & c", "1")])._repr_html_()
    assert "<code>wte</code>" in html and r"\(VC\)" in html and 'class="math' in html
    assert "a &lt; b &amp; c" in html  # text is escaped
    assert "<th>0</th>" not in html and ">0<" not in html  # no index column
    assert "text-align: right" not in html  # headers align with their (left-aligned) cells


@pytest.mark.parametrize("value,expected", [
    ("plain", "plain"), ("`x < y`", "<code>x &lt; y</code>"), ("$d_k$ and `n`", r"\(d_k\)"),
    ("**total**", "<strong>total</strong>"),
    (3.5, "3.5"), ("a $ b", "a $ b"),
])
def test_cell_html(value, expected):
    assert expected in cell_html(value)


@pytest.mark.parametrize("header,rows,error,fragment", [
    ("ab", [], TypeError, "header"),
    ([1, 2], [], TypeError, "header"),
    ([], [], ValueError, "header"),
    (["a", "b"], [("x",)], ValueError, "rows[0]"),
])
def test_table_bad_input(header, rows, error, fragment):
    with pytest.raises(error, match=fragment.replace("[", r"\[")):
        table(header, rows)
