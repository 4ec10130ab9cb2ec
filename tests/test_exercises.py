"""The build-it checker (llmscratch.exercises): pass, first mismatch, stub, errors."""

import pytest
import torch

from llmscratch.exercises import check, compare


def ref(x):
    return x * 2


def test_pass_and_fail_and_stub(capsys):
    cases = [(torch.randn(3, 4, generator=torch.Generator().manual_seed(i)),) for i in range(3)]
    assert check("double", lambda x: x + x, ref, cases)
    assert "PASS double" in capsys.readouterr().out
    bad = check("double", lambda x: x * 2 + (x > 1).float(), ref, cases)
    assert not bad and "FAIL double: case" in bad.message and "differs most at index" in bad.message

    def stub(x):
        raise NotImplementedError
    r = check("double", stub, ref, cases)
    assert not r and r.message.startswith("NOT YET") and r.n_cases == 1
    r = check("double", lambda x: x.reshape(4, 3) * 2, ref, cases)
    assert "shape (4, 3), expected (3, 4)" in r.message
    r = check("double", lambda x: 1 / 0, ref, cases)
    assert "ZeroDivisionError" in r.message


def test_inputs_are_copied():
    def mutating(x):
        x.add_(1)
        return x * 2 - 2
    x = torch.ones(3)
    assert check("copy", mutating, ref, [(x,)], quiet=True)
    assert torch.equal(x, torch.ones(3))


def test_compare_structures():
    assert compare([1, (2.0, "a")], [1, (2.0, "a")]) is None
    assert "output[1][0]" in compare([1, (2.5, "a")], [1, (2.0, "a")])
    assert "keys" in compare({"a": 1}, {"b": 1})
    assert "dtype" in compare(torch.zeros(2, dtype=torch.int64), torch.zeros(2))


@pytest.mark.parametrize("bad", [None, 3])
def test_bad_arguments(bad):
    with pytest.raises(TypeError, match="yours"):
        check("x", bad, ref, [(1,)])
    with pytest.raises(ValueError, match="cases"):
        check("x", ref, ref, [])


def test_mismatch_points_at_a_real_difference_with_infinities():
    """-inf where both agree (masked logits) is no difference: the message names the cell that differs."""
    want = torch.tensor([[float("-inf"), 1.0, 2.0], [0.0, float("-inf"), 3.0]])
    got = want.clone()
    got[1, 2] = float("-inf")  # the reader masked one logit too many
    msg = compare(got, want)
    assert "index (1, 2)" in msg and "got -inf, expected 3" in msg
    got = want.clone()
    got[0, 1] = 1.5
    assert "index (0, 1)" in compare(got, want)
