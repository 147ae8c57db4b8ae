"""Parameter constraints as data: each constraint against hand-picked values, and the one
message format."""

import numpy as np
import pytest

from hashbench.errors import InputError
from hashbench.params import (
    BOOL,
    SEED,
    Interval,
    ListOf,
    Options,
    Pattern,
    check,
    check_params,
)


@pytest.mark.parametrize("constraint, good, bad", [
    (Interval(int, 1, 4096), [1, 4096, np.int64(7)], [0, 4097, 2.0, True, "3", None]),
    (Interval(float, 0, None, closed="neither"), [1e-9, 3, 2.5], [0, -1, float("nan"), float("inf"), False]),
    (Interval(float, 0, 1, closed="left"), [0, 0.5], [1, 1.0, -0.1]),
    (SEED, [0, 5], [-1, 1.5, True]),
    (Options(None, "sigmoid"), [None, "sigmoid"], ["tanh", 0]),
    (BOOL, [True, False], [1, 0, "true"]),
    (Pattern(r"paper:[1-9][0-9]*", "'paper:N'"), ["paper:7"], ["paper:0", "paper", 7]),
    (ListOf(Interval(int, 1, None)), [[8, 4], (1,)], [[], [0], [True], "8", 8]),
])
def test_constraints_accept_and_refuse(constraint, good, bad):
    assert all(constraint.accepts(v) for v in good)
    assert not any(constraint.accepts(v) for v in bad)


def test_check_returns_plain_ints_and_names_the_alternatives():
    assert type(check(np.int32(3), "n", Interval(int, 1, None))) is int
    assert check(None, "margin", [Interval(float, 0, None), None]) is None
    with pytest.raises(InputError, match=r"^n_labelled must be an integer >= 1 or None, got 0$"):
        check(0, "n_labelled", [Interval(int, 1, None), None])
    with pytest.raises(InputError, match=r"^ksh: n_anchors must be an integer >= 1, got \[300\]$"):
        check_params({"n_anchors": [300], "other": object()}, {"n_anchors": [Interval(int, 1, None)]}, "ksh")
