"""hashbench's metrics against the DSH authors' own evaluation code, as numbers.

``tests/data/authors-eval/`` is a copy of ``../shared/paper/authors-eval/`` (its README says
how it was made): seeded codes and labels, and what the authors' released ``compute_map.m``
and ``compute_precision_recall.m`` output on them under GNU Octave 7.3.0."""

import json
from pathlib import Path

import numpy as np
import pytest

from hashbench.codes import pack
from hashbench.errors import InputError
from hashbench.metrics import (
    RECALL_LEVELS,
    RELEASED_LEVELS,
    evaluate,
    matlab_colon,
    released_pr_levels,
)

HERE = Path(__file__).parent / "data" / "authors-eval"
CASES = np.load(HERE / "cases.npz")
EXPECTED = json.loads((HERE / "expected.json").read_text())
NAMES = sorted(EXPECTED)


def case(name):
    q, d = CASES[f"{name}__Q"], CASES[f"{name}__D"]
    return pack(q), pack(d), CASES[f"{name}__QL"], CASES[f"{name}__DL"], q.shape[1]


@pytest.mark.parametrize("name", NAMES)
def test_stable_map_and_p_at_10_equal_theirs(name):
    qc, dc, ql, dl, bits = case(name)
    res = evaluate(qc, dc, ql, dl, bits, topk=10)
    exp = EXPECTED[name]
    if res["n_no_relevant"]:  # theirs is NaN (0/0); on the queries that have a relevant item it is ours
        assert np.isnan(exp["map"]) and res["n_no_relevant"] == exp["n_no_relevant"]
        assert abs(res["map"] - exp["map_valid_only"]) <= 1e-15
        assert abs(res["precision_at_k"] - exp["p_at_10_valid_only"]) <= 1e-15
    else:
        assert abs(res["map"] - exp["map"]) <= 1e-15
        assert abs(res["precision_at_k"] - exp["p_at_10"]) <= 1e-15


def test_matlab_range():
    assert len(RELEASED_LEVELS) == 21 and RELEASED_LEVELS[0] == 0 and RELEASED_LEVELS[-1] == 1
    assert RELEASED_LEVELS[12] == 0.6 and RELEASED_LEVELS[14] == 0.7 and RELEASED_LEVELS[17] == 0.85
    assert 0 * 0.05 + 12 * 0.05 != 0.6  # a + k d would not land on them
    np.testing.assert_array_equal(matlab_colon(0, 0.25, 1), [0, 0.25, 0.5, 0.75, 1])
    assert len(matlab_colon(0, 0.1, 0.3)) == 4  # MATLAB's tolerance: 0.3 / 0.1 = 2.9999999999999996


@pytest.mark.parametrize("name", NAMES)
def test_released_pr_rule_equals_theirs(name):
    qc, dc, ql, dl, bits = case(name)
    ours = evaluate(qc, dc, ql, dl, bits, pr_rule="released")["pr_recall_levels"]
    assert [p["recall"] for p in ours] == RELEASED_LEVELS.tolist()
    np.testing.assert_allclose([p["precision"] for p in ours], EXPECTED[name]["pr_levels_matlab_colon"],
                               rtol=0, atol=1e-14)
    # with Octave's range (a + k d everywhere) the same loop gives Octave's own output
    octave = released_pr_levels(qc, dc, ql, dl, bits, levels=np.arange(21) * 0.05).mean(0)
    np.testing.assert_allclose(octave, EXPECTED[name]["pr_levels_octave_range"], rtol=0, atol=1e-14)


def clean_reference(q, d, ql, dl):
    """The clean rule, slowly: per query, the precision at the stable rank of its
    ceil(rho R)-th relevant item (the first for rho = 0), averaged over queries with R > 0."""
    rows = []
    for i in range(len(q)):
        dist = (q[i] != d).sum(1)
        rel = (dl == ql[i])[np.argsort(dist, kind="stable")]
        hits = np.flatnonzero(rel) + 1
        if len(hits) == 0:
            continue
        rows.append([(t := max(int(np.ceil(round(rho * len(hits), 9))), 1)) / hits[t - 1] for rho in RECALL_LEVELS])
    return np.mean(rows, axis=0)


@pytest.mark.parametrize("name", NAMES)
def test_clean_rule_and_how_it_differs_from_theirs(name):
    qc, dc, ql, dl, bits = case(name)
    ours = np.array([p["precision"] for p in evaluate(qc, dc, ql, dl, bits)["pr_recall_levels"]])
    np.testing.assert_allclose(ours, clean_reference(CASES[f"{name}__Q"], CASES[f"{name}__D"], ql, dl), atol=1e-12)
    theirs = np.array(EXPECTED[name]["pr_levels_matlab_colon"])
    # level 0: theirs is P@1, ours the precision at the first relevant item (>= P@1)
    assert ours[0] >= theirs[0] - 1e-12
    if name == "e_norel12":  # their mean counts 48 queries without a relevant item as zeros
        assert abs(theirs.mean() - ours.mean() * 452 / 500) < 0.02
    elif name == "b_48bit":  # many relevant items per query (R = 200): only level 0 and the thresholds differ
        np.testing.assert_allclose(ours[1:], theirs[1:], atol=0.01)


def test_pr_rule_is_checked():
    qc, dc, ql, dl, bits = case("a_12bit")
    with pytest.raises(InputError, match="pr_rule must be one of clean, released"):
        evaluate(qc, dc, ql, dl, bits, pr_rule="matlab")


def test_evaluate_command_takes_the_rule(tmp_path, capsys):
    from hashbench.cli import main

    paths = {}
    for part in ("Q", "D", "QL", "DL"):
        paths[part] = tmp_path / f"{part}.npy"
        np.save(paths[part], CASES[f"f_smallR16__{part}"])
    argv = ["evaluate", "--query-codes", paths["Q"], "--db-codes", paths["D"], "--query-labels", paths["QL"],
            "--db-labels", paths["DL"], "--json", "--pr-rule", "released"]
    assert main([str(a) for a in argv]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["pr_rule"] == "released"
    np.testing.assert_allclose([p["precision"] for p in res["pr_recall_levels"]],
                               EXPECTED["f_smallR16"]["pr_levels_matlab_colon"], rtol=0, atol=1e-14)
