"""torch is a dependency of the DSH family only: importing hashbench, the classic methods,
the budget parser, ``hashbench evaluate`` and the CLI's help load no torch (each checked in a
fresh interpreter, where nothing else has imported it)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PROBE = """
import sys
{body}
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("TORCH" if loaded else "NO-TORCH", len(loaded))
"""


ROOT = Path(__file__).resolve().parents[1]


def _run(body: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True,
                         timeout=120, env=env, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_the_probe_sees_torch_when_it_is_imported():
    assert _run("import hashbench.nets.model").startswith("TORCH")


@pytest.mark.parametrize("body", [
    "import hashbench",
    "import hashbench.hashers, hashbench.metrics, hashbench.experiment, hashbench.features",
    "from hashbench.hashers import get_hasher; from hashbench.hashers.dsh import DSH",
    "from hashbench.nets import parse_budget, get_schedule; get_schedule(parse_budget('800'))",
    ("from hashbench import cli\nfor argv in (['--help'], ['run', '--help'], ['reproduce', '--help']):\n"
     "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass"),
], ids=["hashbench", "runner", "dsh-class", "budget", "cli-help"])
def test_no_torch(body):
    assert _run(body).startswith("NO-TORCH")


def test_evaluate_command_runs_without_torch(tmp_path):
    rng = np.random.default_rng(0)
    for name, arr in {"q": rng.integers(0, 2, (20, 16)), "d": rng.integers(0, 2, (100, 16)),
                      "ql": rng.integers(0, 3, 20), "dl": rng.integers(0, 3, 100)}.items():
        np.save(tmp_path / f"{name}.npy", arr)
    argv = ["evaluate", "--query-codes", "q.npy", "--db-codes", "d.npy", "--query-labels", "ql.npy",
            "--db-labels", "dl.npy", "--json"]
    body = f"import os\nos.chdir({str(tmp_path)!r})\nfrom hashbench import cli\nassert cli.main({argv!r}) == 0"
    assert _run(body).startswith("NO-TORCH")
