"""The cost of a Dask cluster per cell: one digits grid run by ``--jobs 2`` (joblib processes)
and by a LocalCluster of 2 single-thread worker processes, timed in the same run.

    python tests/benchmarks/dask_vs_processes.py [--seeds 0,1,2,3]

Each side runs the grid twice into a fresh result file: cold (the pool's processes start
and import hashbench as they go; the LocalCluster's start is timed separately) and warm
(the same pool again). The feature store is filled before anything is timed. Prints the
wall times, the ratio dask / processes, the difference per cell, and the time the cells
themselves measured (summed over cells), which tells Dask's own cost from slower compute.
The README quotes it.
"""

import argparse
import tempfile
import time
from pathlib import Path

from hashbench.backends import open_backend
from hashbench.experiment import plan_cells, run_grid


def timed(cells, out, **kwargs) -> tuple[float, float]:
    """(wall seconds, the cells' own train + encode + rank seconds summed)."""
    t0 = time.perf_counter()
    rows = run_grid(cells, out, force=True, **kwargs)
    return time.perf_counter() - t0, float((rows["train_s"] + rows["encode_s"] + rows["rank_s"]).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="lsh,itq,cca-itq")
    parser.add_argument("--bits", default="12,24,36,48")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    cells = plan_cells(args.methods.split(","), [int(b) for b in args.bits.split(",")],
                       [int(s) for s in args.seeds.split(",")], dataset="digits")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = str(tmp / "features")
        run_grid(cells[:1], tmp / "warmup.csv", store=store)  # the feature store, filled untimed
        times = {}
        times["processes", "cold"] = timed(cells, tmp / "p1.csv", jobs=2, store=store)
        times["processes", "warm"] = timed(cells, tmp / "p2.csv", jobs=2, store=store)
        t0 = time.perf_counter()
        with open_backend("dask", n_workers=2) as backend:
            start = time.perf_counter() - t0
            times["dask", "cold"] = timed(cells, tmp / "d1.csv", store=store, backend=backend)
            times["dask", "warm"] = timed(cells, tmp / "d2.csv", store=store, backend=backend)
    print(f"{len(cells)} digits cells ({args.methods}; bits {args.bits}; seeds {args.seeds})")
    print(f"LocalCluster(2 workers x 1 thread) start: {start:.1f} s")
    for run in ("cold", "warm"):
        (p, pc), (d, dc) = times["processes", run], times["dask", run]
        print(f"{run}: --jobs 2 {p:.1f} s, dask {d:.1f} s, ratio dask/processes {d / p:.2f}, "
              f"{(d - p) / len(cells) * 1000:+.0f} ms per cell; in the cells (train+encode+rank, summed): "
              f"{pc:.1f} s vs {dc:.1f} s")


if __name__ == "__main__":
    main()
