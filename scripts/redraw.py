"""Redraw the figures that read only result rows (figure6, the leaderboard) from the rows
already in results/, training and fitting nothing: for a grid still running, or one whose
remaining cells need models that are not on this machine (``hashbench reproduce`` would
train them first).

    PYTHONPATH=. python scripts/redraw.py figure6 leaderboard

writes results/NAME.png and .pdf from results/NAME.csv."""

import sys
from pathlib import Path

from hashbench.figures import LARGEST_BITS
from hashbench.plots import figure6, leaderboard_figure, save
from hashbench.results import read_results

RESULTS = Path(__file__).resolve().parents[1] / "results"
DRAW = {"figure6": lambda rows, stem: figure6(rows, stem, pr_bits=LARGEST_BITS),
        "leaderboard": lambda rows, stem: save(leaderboard_figure(rows), stem)}

for name in sys.argv[1:] or DRAW:
    if name not in DRAW:
        sys.exit(f"redraw: {name!r} is drawn from models, not rows alone; choose from {', '.join(DRAW)}")
    DRAW[name](read_results(RESULTS / f"{name}.csv"), RESULTS / name)
    print(f"{RESULTS / name}.png/.pdf")
