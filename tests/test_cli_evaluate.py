import json

import numpy as np
import pytest

from hashbench.cli import main
from hashbench.codes import pack
from hashbench.metrics import evaluate


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    qb = rng.integers(0, 2, (30, 20)).astype(np.uint8)
    db = rng.integers(0, 2, (200, 20)).astype(np.uint8)
    ql, dl = rng.integers(0, 3, 30), rng.integers(0, 3, 200)
    paths = {}
    for name, arr in dict(q=qb, d=db, ql=ql, dl=dl, qpm=2 * qb.astype(np.int8) - 1,
                          qpacked=np.packbits(qb, axis=1), dpacked=np.packbits(db, axis=1)).items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], arr)
    return paths, (qb, db, ql, dl)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_equals_library_call(files, capsys):
    p, (qb, db, ql, dl) = files
    code, out, _ = run(capsys, "evaluate", "--query-codes", p["q"], "--db-codes", p["d"],
                       "--query-labels", p["ql"], "--db-labels", p["dl"], "--topk", 10, "--json")
    assert code == 0
    res = json.loads(out)
    ref = evaluate(pack(qb), pack(db), ql, dl, 20, topk=10)
    for key in ("map", "map_expected", "map_optimistic", "map_pessimistic", "empty_r_fraction",
                "map_at_k", "n_queries", "n_database", "n_bits"):
        assert res[key] == ref[key]
    assert set(res["precision_r"]) == {"0", "1", "2"}
    assert len(res["pr_curve"]) == 21 and set(res["pr_curve"][0]) == {"radius", "precision", "recall"}


def test_pm1_and_packed_inputs_give_the_same_numbers(files, capsys):
    p, _ = files
    outs = []
    for q, d, extra in (("q", "d", []), ("qpm", "d", []), ("qpacked", "dpacked", ["--bits", 20])):
        code, out, _ = run(capsys, "evaluate", "--query-codes", p[q], "--db-codes", p[d],
                           "--query-labels", p["ql"], "--db-labels", p["dl"], "--json", *extra)
        assert code == 0
        outs.append(json.loads(out)["map"])
    assert outs[0] == outs[1] == outs[2]


def test_readable_table(files, capsys):
    p, _ = files
    code, out, _ = run(capsys, "evaluate", "--query-codes", p["q"], "--db-codes", p["d"],
                       "--query-labels", p["ql"], "--db-labels", p["dl"])
    assert code == 0 and "mAP (ties in database order)" in out and "precision within radius 2" in out


@pytest.mark.parametrize("change, arg", [
    (dict(q="missing"), "--query-codes"),
    (dict(ql="d"), "--query-labels"),  # 200 x 20 labels for 30 queries
    (dict(dl="ql"), "--db-labels"),  # 30 labels for 200 codes
    (dict(q="dpacked"), "--query-codes"),  # 3 columns of uint8 without --bits: values > 1
    (dict(bits=32), "--query-codes"),
    (dict(radius=-1), "--radius"),
    (dict(q="garbage"), "--query-codes"),
    (dict(q="nan"), "--query-codes"),
    (dict(q="empty"), "--query-codes"),
])
def test_bad_input_exits_2_with_one_line(files, capsys, tmp_path, change, arg):
    p, _ = files
    (tmp_path / "garbage.npy").write_bytes(b"not an npy file")
    np.save(tmp_path / "nan.npy", np.array([[np.nan] * 20]))
    np.save(tmp_path / "empty.npy", np.zeros((0, 20)))
    p = dict(p, missing=tmp_path / "nope.npy", garbage=tmp_path / "garbage.npy",
             nan=tmp_path / "nan.npy", empty=tmp_path / "empty.npy")
    names = dict(q="q", d="d", ql="ql", dl="dl")
    names.update({k: v for k, v in change.items() if k in names})
    argv = ["evaluate", "--query-codes", p[names["q"]], "--db-codes", p[names["d"]],
            "--query-labels", p[names["ql"]], "--db-labels", p[names["dl"]]]
    if "bits" in change:
        argv += ["--bits", change["bits"]]
    if "radius" in change:
        argv += ["--radius", change["radius"]]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert arg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
