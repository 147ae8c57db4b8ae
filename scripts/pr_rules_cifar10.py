"""How far apart the two PR-at-recall-levels rules are on our CIFAR-10 codes (README,
"Where we differ"): the classic methods of Figure 6 at 48 bits on GIST, seed 0, under both
CIFAR-10 protocols of the figure, scored with ``pr_rule="clean"`` (what Figure 6 plots)
and ``pr_rule="released"`` (the DSH authors' compute_precision_recall.m).

    PYTHONPATH=. HASHBENCH_DATA=../shared/data python scripts/pr_rules_cifar10.py

writes results/pr-rules-cifar10.csv (one row per method, protocol and level) and prints
the largest differences."""

import csv
import sys

from hashbench.experiment import fit_cell, make_cell, prepare
from hashbench.io import atomic_write
from hashbench.metrics import evaluate

N_LABELLED = {"cca-itq": 1000}  # as `reproduce figure6`
rows = []
for protocol in ("cifar10-dsh", "cifar10-standard"):
    for method in ("lsh", "itq", "cca-itq"):
        cell = make_cell("cifar10", protocol, "gist", method, 48, 0, N_LABELLED.get(method))
        ds, split, hasher, X = prepare(cell)
        fit_cell(ds, split, hasher, X)
        q, d = hasher.encode(X[split.query]), hasher.encode(X[split.database])
        args = (q, d, ds.labels[split.query], ds.labels[split.database], 48)
        clean = evaluate(*args, self_index=split.self_index())["pr_recall_levels"]
        released = evaluate(*args, self_index=split.self_index(), pr_rule="released")["pr_recall_levels"]
        for c, r in zip(clean, released, strict=True):
            rows.append({"protocol": protocol, "method": method, "bits": 48, "level": round(c["recall"], 2),
                         "clean": c["precision"], "released": r["precision"],
                         "released_minus_clean": r["precision"] - c["precision"]})
        diffs = [abs(r["released_minus_clean"]) for r in rows[-21:]]
        print(f"{protocol} {method}: level 0 {rows[-21]['released_minus_clean']:+.4f}, "
              f"levels 0.05-1 max |diff| {max(diffs[1:]):.2e}", file=sys.stderr)
with atomic_write("results/pr-rules-cifar10.csv", "w") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
