"""``hashbench reproduce NAME``: the paper's experiments as grids of cells, run through the
one experiment runner, stored in ``results/NAME.csv`` and printed next to the published
numbers of ``baselines/``.

| NAME | grid (default dataset CIFAR-10, both protocols ``cifar10-dsh`` and ``cifar10-standard``) |
|---|---|
| table4 | 48 bits: LSH, CCA-ITQ, KSH on GIST, CNN-cls and CNN-ours features; DSH on images |
| figure6 | 12/24/36/48 bits: LSH, ITQ, CCA-ITQ, KSH on GIST and DSH; PR curves and precision within radius 2 |
| table1 | 12-bit DSH: regulariser alpha in {0, 0.001, 0.01, 0.1}; sigmoid-relaxed, m in {6, 3, 2, 1} (release's SGD) |
| table2 | DSH from scratch at 12/24/36/48 bits against fine-tuned from the 12-bit model |
| table3 | four 12-bit DSH models (seeds 0-3) and every ensemble of two or more |
| leaderboard | every method at 12/24/32/48 bits; end-to-end deep ones at 12 (seeds 0-2) and 48 bits |

The supplementary's figures draw on those grids (run first, so stored rows and trained
models are reused and nothing is retrained that a table already trained):

| NAME | figure (PNG and PDF) | from |
|---|---|---|
| figure1 | histograms of the 12-bit outputs on the query images, per alpha and sigmoid margin | table1's models |
| figure2 | PR curves of the Table 1 models, one panel per protocol | table1's rows |
| figure3 | PR curves, from scratch against fine-tuned, at 24/36/48 bits | table2's rows |
| figure4 | training and test loss of the 48-bit model from scratch and fine-tuned | table2's checkpoints |
| figure5 | PR curves, fine-tuned against the best ensemble (by mAP) at 24/36/48 bits | table2's and table3's rows |
| figure6 | PR curves at 48 bits and precision within radius 2 against code length | its own grid |
| figure7 | top-10 retrievals at 48 bits, 3 failed and 3 successful cases (Figures 7-18) | figure6's 48-bit cells |

figure7 shows LSH, ITQ, CCA-ITQ, KSH and DSH as ``hashbench show`` does: from their stored
codes when there, else fitted.

Settings recorded in every row (the paper leaves them unstated; see the README for the
evidence): the supervised baselines learn from a labelled subset of the training images,
CCA-ITQ from 1,000 and KSH from 2,000 (the KSH authors' demo); seed 0.

Models that later cells need (the 12-bit DSH model behind CNN-ours and behind fine-tuning,
the CNN-cls classifier) are trained first, once, under ``runs/models/`` and reused by every
protocol with the same training images.
"""

import functools
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .backends import open_backend
from .errors import InputError
from .experiment import (
    IMAGES,
    MODELS_DIR,
    cached_dataset,
    cell_split,
    make_cell,
    model_path,
    run_grid,
)
from .figures import FIGURES
from .hashers import HASHERS, ORIGINS
from .io import atomic_write, check_writable
from .nets.schedules import budget_tag, get_schedule, parse_budget
from .paper import compare
from .paths import in_workdir
from .protocols import get_protocol

PROTOCOLS = {
    "cifar10": ("cifar10-dsh", "cifar10-standard"),
    "nuswide": ("nuswide-21",),
    "digits": ("digits-dsh", "digits-standard"),
}
N_LABELLED = {"cca-itq": 1000, "ksh": 2000}
BITS = (12, 24, 36, 48)
ALPHAS = (0.0, 0.001, 0.01, 0.1)
SIGMOID_MARGINS = (6, 3, 2, 1)


@dataclass(frozen=True)
class Setup:
    """What one reproduction runs on: dataset, protocols, DSH schedule, seed, folders."""

    dataset: str
    protocols: tuple[str, ...]
    budget: str | int  # as nets.schedules.parse_budget returns it
    seed: int = 0
    data_dir: str | None = None
    store: str | None = None
    models: Path = MODELS_DIR
    retrain_before: float | None = None  # --retrain: model files older than this are trained again
    dry: bool = False  # plan only (``--print-config``): train no model that a later stage needs

    def hand_features(self) -> str:
        """GIST for real photographs; raw pixels for 8x8 digits, where GIST has little to see."""
        return "gist" if min(cached_dataset(self.dataset, self.data_dir).images.shape[1:3]) >= 32 else "pixels"

    def dsh(self, protocol: str, bits: int, seed: int | None = None, **params):
        params = {"schedule": self.budget, **params}  # "quick", the default, is dropped by make_cell
        return make_cell(self.dataset, protocol, IMAGES, "dsh", bits, self.seed if seed is None else seed, **params)

    def classic(self, protocol: str, features: str, method: str, bits: int):
        return make_cell(self.dataset, protocol, features, method, bits, self.seed, N_LABELLED.get(method))

    def cell(self, protocol: str, features: str, method: str, bits: int, seed: int | None = None):
        """A cell of any method at this setup's budget (for those that declare a
        ``budget_param``) and its labelled subset (:data:`N_LABELLED`)."""
        budget = HASHERS[method].budget_param
        params = {budget: self.budget} if budget else {}
        return make_cell(self.dataset, protocol, features, method, bits, self.seed if seed is None else seed,
                         N_LABELLED.get(method), **params)

    def trained(self, cell) -> Path:
        """The model file of a DSH cell (which must have been run)."""
        return model_path(cell, cell_split(cell, self.data_dir)[1], self.models)


def _table4(s: Setup, run) -> list:
    # stage 1: the three CNNs (12-bit DSH behind CNN-ours, 48-bit DSH, CNN-cls), which depend
    # on nothing; with --jobs 3 (reproduce's default) they train side by side
    base = [s.dsh(p, 12) for p in s.protocols]
    run(base + [s.dsh(p, 48) for p in s.protocols], alongside=[functools.partial(_classifier, s)])
    cls_model = _classifier(s)
    hand = s.hand_features()
    features = {hand: hand,
                "cnn-cls": f"cnn-cls:model={cls_model}",
                "cnn-ours": f"cnn-ours:model={s.trained(base[0])}"}
    cells = []
    for p in s.protocols:
        for spec in features.values():
            cells += [s.classic(p, spec, m, 48) for m in ("lsh", "cca-itq", "ksh")]
        cells.append(s.dsh(p, 48))
    return base + cells


def _classifier(s: Setup) -> Path:
    """The CNN-cls model, trained on the first protocol's training images when missing (or
    older than the ``--retrain`` call: in any process, once)."""
    from .training import train_classifier

    path = s.models / s.dataset / f"cnn-cls-s{s.seed}-{budget_tag(s.budget)}.pt"
    if path.is_file() and s.retrain_before is not None and path.stat().st_mtime < s.retrain_before:
        path.unlink()
    if not path.is_file() and not s.dry:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = train_classifier(path, seed=s.seed, schedule=s.budget, protocol=s.protocols[0],
                                  data_dir=s.data_dir, command="hashbench reproduce table4")
        print(f"CNN-cls classifier: test accuracy {record['test_accuracy']:.4f} (paper: 0.7454); {path}")
    return path


def _figure6(s: Setup, run) -> list:
    hand = s.hand_features()
    return [c for p in s.protocols for c in
            [s.classic(p, hand, m, b) for m in ("lsh", "itq", "cca-itq", "ksh") for b in BITS]
            + [s.dsh(p, b) for b in BITS]]


def _table1(s: Setup, run) -> list:
    sgd = release_solver(s.budget)
    return [c for p in s.protocols for c in
            [s.dsh(p, 12, alpha=a) for a in ALPHAS]
            + [s.dsh(p, 12, relax="sigmoid", margin=float(m), schedule=sgd) for m in SIGMOID_MARGINS]]


def release_solver(budget) -> str:
    """The schedule of Table 1's sigmoid-relaxed models: the release's SGD solver, as many
    iterations as ``budget`` gives the other models. Deviation from the quick schedule, by
    measurement: Adam saturates the sigmoid in its first steps (one code for every image;
    see :mod:`hashbench.nets`), SGD trains it."""
    return "paper" if budget == "paper" else f"paper:{get_schedule(budget).iterations}"


def _table2(s: Setup, run) -> list:
    scratch = [s.dsh(p, b) for p in s.protocols for b in BITS]
    run([c for c in scratch if c.bits == 12])
    start = s.trained(scratch[0])
    return scratch + [s.dsh(p, b, init_from=str(start)) for p in s.protocols for b in BITS[1:]]


def _table3(s: Setup, run) -> list:
    seeds = range(s.seed, s.seed + 4)
    members = {p: [s.dsh(p, 12, seed=m) for m in seeds] for p in s.protocols}
    run([c for cs in members.values() for c in cs])
    cells = [c for cs in members.values() for c in cs]
    for p in s.protocols:
        for n in (2, 3, 4):
            for combo in itertools.combinations(range(4), n):
                schedule = {} if s.budget == "quick" else {"schedule": s.budget}
                cells.append(make_cell(
                    s.dataset, p, IMAGES, "dsh-ensemble", 12 * n, s.seed, member_bits=12,
                    seeds=[seeds[i] for i in combo],
                    checkpoints=[str(s.trained(members[p][i])) for i in combo], **schedule))
    return cells


SHALLOW = ("lsh", "itq", "cca-itq", "ksh", "pcah", "sh", "sdh")
LEADERBOARD_BITS = (12, 24, 32, 48)
DEEP_BITS = (12, 48)
DEEP_SEEDS = 3  # end-to-end trainings per method at DEEP_BITS[0]: the spread between trainings


def end_to_end_methods() -> list[str]:
    """The built-in deep methods trained end to end: those that declare ``input_kind``
    images and ``trains_model_file`` (DSH first; an ensemble of trained models is not one)."""
    return sorted((m for m, c in HASHERS.items() if ORIGINS[m] == "built-in" and c.input_kind == IMAGES
                   and c.trains_model_file), key=lambda m: (m != "dsh", m))


def head_methods() -> list[str]:
    """The built-in methods trained on frozen features with a training budget (the losses'
    linear heads): ``input_kind`` features and a ``budget_param``."""
    return sorted(m for m, c in HASHERS.items() if ORIGINS[m] == "built-in" and c.input_kind != IMAGES
                  and c.budget_param is not None)


def _leaderboard(s: Setup, run) -> list:
    # stages, cheapest first, each written before the next starts: shallow methods; the
    # classifier baseline (after the CNN-cls training, when its model is missing); the
    # loss heads on frozen features; the end-to-end trainings (each method's first
    # 12- and 48-bit model before the extra 12-bit seeds)
    hand = s.hand_features()
    shallow = [s.cell(p, hand, m, b) for p in s.protocols for m in SHALLOW for b in LEADERBOARD_BITS]
    run(shallow)
    cls_model = _classifier(s)
    sanity = [s.cell(p, f"cnn-cls-logits:model={cls_model}", "classifier", b)
              for p in s.protocols for b in LEADERBOARD_BITS]
    run(sanity)
    heads = [s.cell(p, f, m, b) for p in s.protocols for f in (hand, f"cnn-cls:model={cls_model}")
             for m in head_methods() for b in LEADERBOARD_BITS]
    run(heads)
    runs = [(b, s.seed) for b in DEEP_BITS] + [(DEEP_BITS[0], s.seed + i) for i in range(1, DEEP_SEEDS)]
    deep = [s.cell(p, IMAGES, m, b, seed) for b, seed in runs for m in end_to_end_methods() for p in s.protocols]
    return shallow + sanity + heads + deep


EXPERIMENTS: dict[str, Callable] = {
    "table4": _table4, "figure6": _figure6, "table1": _table1, "table2": _table2, "table3": _table3,
    "leaderboard": _leaderboard,
}


NAMES = tuple(sorted({*EXPERIMENTS, *FIGURES}))


def _setup(name, dataset, budget, protocols, seed, data_dir, store, models, retrain=False, dry=False) -> Setup:
    """The checked setup of a reproduction (every argument checked before anything runs)."""
    if name not in NAMES:
        raise InputError(f"unknown experiment {name!r}; choose from {', '.join(NAMES)}")
    if dataset not in PROTOCOLS:
        raise InputError(f"--dataset: reproduce runs on {', '.join(PROTOCOLS)}, not {dataset!r}")
    budget = parse_budget(budget)
    if name in ("table4", "leaderboard") and dataset == "nuswide":
        raise InputError(f"{name} is a CIFAR-10 experiment (its CNN-cls features need single-label classes)")
    protocols = tuple(protocols or PROTOCOLS[dataset])
    for p in protocols:
        if get_protocol(p).dataset != dataset:
            raise InputError(f"--protocol {p} is for dataset {get_protocol(p).dataset}, not {dataset}")
    return Setup(dataset, protocols, budget, seed, None if data_dir is None else str(data_dir),
                 None if store is None else str(store), Path(models) if models else in_workdir(MODELS_DIR),
                 time.time() if retrain else None, dry)


def print_config(name: str, dataset: str = "cifar10", budget="quick", protocols=None, seed: int = 0,
                 data_dir=None, models=None) -> str:
    """The grids ``reproduce NAME`` runs, as one ``run --config`` TOML file (nothing runs or
    trains). Stages are flattened: cells whose features or starting model come from an earlier
    stage name the files that stage writes under ``runs/models/``."""
    from .config import from_cells, to_toml

    s = _setup(name, dataset, budget, protocols, seed, data_dir, None, models, dry=True)
    sources = FIGURES.get(name, ((name,), None))[0]
    if not sources:
        raise InputError(f"{name} draws from no grid (it is `hashbench show`'s figure); nothing to print")
    cells = [c for n in sources for c in EXPERIMENTS[n](s, lambda cells, alongside=(): None)]
    note = (f"hashbench reproduce {name} --dataset {dataset} --budget {budget} --seed {seed}, as a grid for "
            f"`hashbench run --config`.\nModel files named here are trained by `hashbench reproduce {name}`.")
    return to_toml(from_cells(cells), note)


def result_stem(out_dir, name: str, dataset: str, budget) -> Path:
    """Where a reproduction's CSVs and figures go, without suffix: ``table2`` for CIFAR-10 at
    the quick schedule, ``table2-nuswide`` for another dataset, ``table2-paper-budget`` for the
    release's schedule, so the committed quick results and the paper-budget ones sit side by
    side and each comparison with the paper reads one budget."""
    stem = name if dataset == "cifar10" else f"{name}-{dataset}"
    return Path(out_dir) / (f"{stem}-paper-budget" if budget == "paper" else stem)


def reproduce(name: str, dataset: str = "cifar10", budget="quick", protocols=None, seed: int = 0,
              out_dir=None, jobs: int = 1, force: bool = False, data_dir=None, store=None,
              models=None, log=print, retrain: bool = False, backend: str = "processes",
              scheduler: str | None = None, plugins=()) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """Run experiment ``name`` (a table's grid, or the grids a figure draws from, then the
    figure); return (result rows, comparison with the paper, figure files). ``force`` and
    ``retrain`` (as ``run_grid``) apply once per cell, though stages name cells again.
    ``backend``, ``scheduler``, ``plugins``: where the cells run, and the modules every worker
    imports (:func:`hashbench.backends.open_backend`)."""
    s = _setup(name, dataset, budget, protocols, seed, data_dir, store, models, retrain)
    out_dir = in_workdir("results") if out_dir is None else Path(out_dir)
    check_writable(out_dir, "--out-dir", folder=True)

    def stem(n: str) -> Path:
        return result_stem(out_dir, n, dataset, budget)

    handled = set()  # cells already rerun by this call

    def grid(n: str):
        out = stem(n).with_suffix(".csv")

        def run(cells, alongside=()):
            opts = {"jobs": jobs, "data_dir": s.data_dir, "store": s.store, "log": log, "models": s.models,
                    "backend": pool}
            fresh = [c for c in cells if c not in handled]
            handled.update(cells)
            if (force or retrain) and fresh:
                run_grid(fresh, out, force=force, retrain=retrain, alongside=alongside, **opts)
                alongside = ()
            return run_grid(cells, out, alongside=alongside, **opts)

        cells = EXPERIMENTS[n](s, run)
        rows = run(cells)
        table = compare(n, rows, dataset)
        with atomic_write(out.with_name(out.stem + "-vs-paper.csv"), "w") as f:
            table.to_csv(f, index=False)
        return cells, rows, table

    sources, draw = FIGURES.get(name, ((name,), None))
    # one cluster for every stage of every grid
    with open_backend(backend, scheduler, plugins=plugins, log=log) as pool:
        done = {n: grid(n) for n in sources}
        grids = {n: (cells, rows) for n, (cells, rows, _) in done.items()}
        rows = pd.concat([r for _, r, _ in done.values()], ignore_index=True) if done else pd.DataFrame()
        table = pd.concat([t for _, _, t in done.values()], ignore_index=True) if done else pd.DataFrame()
        figures = draw(s, grids, stem(name)) if draw else []
    return rows, table, figures
