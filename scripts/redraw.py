"""Redraw the figures that read only result rows (figure6, the leaderboard) from the rows
already in results/, training and fitting nothing: for a grid still running, or one whose
remaining cells need models that are not on this machine (``hashbench reproduce`` would
train them first). The drawing is reproduce's own (``hashbench.figures.FIGURES``).

    PYTHONPATH=. python scripts/redraw.py figure6 leaderboard

writes results/NAME.png and .pdf from results/NAME.csv; a bad name or a missing or corrupt
CSV is one line and exit 2, before anything is drawn.

    PYTHONPATH=. python scripts/redraw.py comparisons

rewrites every results/NAME-vs-paper.csv that differs (in more than line order) from
results/NAME.csv compared with the paper as reproduce compares
(``hashbench.paper.comparison_csv``), for rows re-run outside ``reproduce`` (``hashbench run
--out results/NAME.csv``)."""

import sys
from pathlib import Path

from hashbench.errors import InputError
from hashbench.figures import FIGURES
from hashbench.results import read_results

RESULTS = Path(__file__).resolve().parents[1] / "results"
FROM_ROWS = ("figure6", "leaderboard")  # drawers that read their grid's rows and nothing else

names = sys.argv[1:] or list(FROM_ROWS)
if names == ["comparisons"]:
    from hashbench.io import atomic_write
    from hashbench.paper import comparison_csv

    try:
        made = {p: comparison_csv(p.with_name(p.name.replace("-vs-paper", ""))) for p in
                sorted(RESULTS.glob("*-vs-paper.csv"))}
    except (InputError, OSError) as e:
        print(f"redraw: {e}", file=sys.stderr)
        sys.exit(2)
    for path, text in made.items():
        old = path.read_text().splitlines()
        if old[:1] != text.splitlines()[:1] or sorted(old[1:]) != sorted(text.splitlines()[1:]):  # not just order
            with atomic_write(path, "w") as f:  # as reproduce writes it
                f.write(text)
            print(path)
    sys.exit(0)
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
