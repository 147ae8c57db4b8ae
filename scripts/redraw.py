"""Redraw the figures that read only result rows (figure6, the leaderboard) from the rows
already in results/, training and fitting nothing: for a grid still running, or one whose
remaining cells need models that are not on this machine (``hashbench reproduce`` would
train them first). The drawing is reproduce's own (``hashbench.figures.FIGURES``).

    PYTHONPATH=. python scripts/redraw.py figure6 leaderboard

writes results/NAME.png and .pdf from results/NAME.csv; a bad name or a missing or corrupt
CSV is one line and exit 2, before anything is drawn."""

import sys
from pathlib import Path

from hashbench.errors import InputError
from hashbench.figures import FIGURES
from hashbench.results import read_results

RESULTS = Path(__file__).resolve().parents[1] / "results"
FROM_ROWS = ("figure6", "leaderboard")  # drawers that read their grid's rows and nothing else

names = sys.argv[1:] or list(FROM_ROWS)
try:
    for name in names:
        if name not in FROM_ROWS:
            raise InputError(f"{name!r} is not a figure drawn from rows alone; choose from {', '.join(FROM_ROWS)}")
        if not (RESULTS / f"{name}.csv").is_file():
            raise InputError(f"{RESULTS / name}.csv: no such result file (run `hashbench reproduce {name}` first)")
    rows = {name: read_results(RESULTS / f"{name}.csv") for name in names}
except (InputError, OSError) as e:
    print(f"redraw: {e}", file=sys.stderr)
    sys.exit(2)
for name in names:
    for path in FIGURES[name][1](None, {name: ((), rows[name])}, RESULTS / name):
        print(path)
