"""The supplementary's figures: the data behind them, gathered from what is stored (result
rows, trained models and their training checkpoints), and which grids each draws from
(``FIGURES``: figure name -> (the grids of :mod:`hashbench.reproduce` it reads, its
drawer)). Drawing itself is :mod:`hashbench.plots`; running the grids is
:mod:`hashbench.reproduce`, which calls a figure's drawer once its grids are done.

- Figure 1: the real-valued outputs of a trained network on the query images
  (:func:`network_outputs`).
- Figures 2, 3, 5, 6: PR curves (and precision within radius 2) of stored rows, named as
  the paper's legends name them (:func:`hashbench.paper.paper_name`).
- Figure 4: the training and test losses a checkpoint recorded (:func:`nets.load_history`).
- Figure 5: the best ensemble of each size, by mAP, as the paper chose its
  (:func:`best_ensembles`).
- The leaderboard: each method's metrics by code length, averaged over seeds, with the
  spread between trainings (:func:`leaderboard_summary`).
- Figures 7-18 (``hashbench show``): each method's top-k for chosen queries, or for the
  failed and successful cases picked by :func:`select_cases` (:func:`retrievals`,
  :func:`show`).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import InputError
from .experiment import Cell, cell_split, fit_cell, make_cell, own_model_file, prepare
from .hashers import HASHERS
from .hashers.base import method_label
from .labels import relevance_matrix
from .nets.schedules import parse_budget
from .paper import DEFAULT_VARIANT, paper_name, variant
from .provenance import file_sha256
from .ranking import stable_topk
from .storedcodes import codes_dir

if TYPE_CHECKING:
    from .reproduce import Setup

TOP = 10  # retrieved images shown per method, as in the supplementary's Figures 7-18
PANEL_BITS = (24, 36, 48)  # Figures 3 and 5: a panel per code length fine-tuned from the 12-bit model
LARGEST_BITS = 48  # Figures 4 and 7: the longest codes


def network_outputs(model, images: np.ndarray, relax: str | None = None) -> np.ndarray:
    """float32 (n, k) outputs of the trained DSH network in ``model`` (a model file or a
    checkpoint) on uint8 ``images``. For the sigmoid-relaxed variant these are the
    sigmoid's values in [0, 1], the relaxed codes its loss sees (bit = value >= 1/2); for the
    others, the raw outputs (bit = sign)."""
    from . import nets

    net = nets.DSHNet.from_state_dict(nets.load_state(model))
    out = nets.apply(net, images, "outputs", device="cpu")
    return 1.0 / (1.0 + np.exp(-out)) if relax == "sigmoid" else out


def best_ensembles(rows: pd.DataFrame) -> pd.DataFrame:
    """The ``dsh-ensemble`` row of highest mAP for each (protocol, bits): the paper's choice
    of ensembles for its Figure 5 ("the best models in terms of mAP were chosen"). Ties go to
    the first row."""
    ens = rows[rows["method"] == "dsh-ensemble"]
    best = ens.loc[ens.groupby(["protocol", "bits"], sort=False)["map"].idxmax()]
    return best.reset_index(drop=True)


LEADERBOARD_METRICS = ("map", "map_expected", "map_at_k", "precision_r2", "train_s")
FAMILIES = ("shallow", "sanity", "head", "end-to-end")  # the leaderboard's order


def family(method: str) -> str:
    """A method's family on the leaderboard, from its declarations: ``end-to-end`` (learns
    from images), ``head`` (trained on frozen features with a budget), ``sanity`` (the
    classifier baseline), ``shallow`` (the rest); ``other`` for an unregistered name."""
    cls = HASHERS.get(method)
    if cls is None:
        return "other"
    if cls.input_kind == "images":
        return "end-to-end"
    if method == "classifier":
        return "sanity"
    return "head" if cls.budget_param is not None else "shallow"


def leaderboard_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per (protocol, method, features, bits) of result rows: the mean over seeds of
    each of :data:`LEADERBOARD_METRICS` and its spread (``<metric>_min``, ``<metric>_max``),
    ``n_seeds``, and the ``family``; in family order, then method, features, bits.
    ``features`` is the extractor's name (model files dropped). A model trained once and
    loaded by the other protocol's row (which has no ``train_s``) counts the training time
    of the row that trained it; a model trained by another experiment has none, nor has one
    resumed from a partial checkpoint (its ``train_s`` is only the part after the resume)."""
    cols = ["protocol", "family", "method", "features", "bits", "n_seeds"]
    cols += [f"{m}{s}" for m in LEADERBOARD_METRICS for s in ("", "_min", "_max")]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    rows = rows.assign(features=rows["features"].str.split(":").str[0],
                       family=rows["method"].map(family))
    rows.loc[rows["fit"] == "resumed", "train_s"] = np.nan
    own = rows["model_sha256"].fillna("").astype(str) != ""
    trained = rows[own].groupby("model_sha256")["train_s"].max()
    rows.loc[own, "train_s"] = rows.loc[own, "train_s"].fillna(rows.loc[own, "model_sha256"].map(trained))
    keys = ["protocol", "family", "method", "features", "bits"]
    g = rows.groupby(keys, sort=False)
    out = g.size().rename("n_seeds").to_frame()
    for m in LEADERBOARD_METRICS:
        out[m], out[f"{m}_min"], out[f"{m}_max"] = g[m].mean(), g[m].min(), g[m].max()
    out = out.reset_index()
    order = {f: i for i, f in enumerate(FAMILIES)}
    out = out.sort_values(["protocol", "family", "method", "features", "bits"],
                          key=lambda c: c.map(order).fillna(len(order)) if c.name == "family" else c,
                          kind="stable")
    return out[cols].reset_index(drop=True)


@dataclass(frozen=True)
class Retrieval:
    """One method's top-k for every query of a split: ``top`` (nq, k) dataset indices in the
    stable Hamming order (ties by database position, the order mAP is computed in) and
    ``relevant`` (nq, k) whether each shares a label with its query."""

    name: str
    top: np.ndarray
    relevant: np.ndarray

    def precision(self) -> np.ndarray:
        """Precision at k of every query."""
        return self.relevant.mean(axis=1)


def name_of(cell: Cell) -> str:
    """A row title: the method, and its features (without parameters) unless it takes images."""
    name = method_label(cell.method)
    return name if cell.features == "images" else f"{name} ({cell.features.split(':')[0]})"


def plan_show(cells, budget="quick") -> list[Cell]:
    """The cells of ``hashbench show``: those of ``hashbench run``, with the training budget
    of the methods that declare a ``budget_param`` (DSH's ``schedule``) set to ``budget``
    (:func:`nets.schedules.parse_budget`). The schedule is part of a cell, so its model is the
    one ``run`` and ``reproduce --budget`` trained with that schedule: loaded from the model
    cache, trained only when missing."""
    budget = parse_budget(budget)
    out = []
    for c in cells:
        params = {**json.loads(c.params), **json.loads(c.settings)}
        param = HASHERS[c.method].budget_param
        if param is not None:
            params[param] = budget
        labelled = c.n_labelled if c.n_labelled in ("", "all") else int(c.n_labelled)
        labelled = labelled or None
        out.append(make_cell(c.dataset, c.protocol, c.features, c.method, c.bits, c.seed, labelled, **params))
    return out


def cell_codes(cell: Cell, data_dir=None, store=None, models=None, codes=None):
    """(dataset, split, query codes, database codes) of a cell: its stored codes when the
    folder ``codes`` holds them (checked against the split; nothing is fitted) and, for a
    cell with a model file of its own that is there, they are that file's (the codes of a
    model since retrained are not); else fitted exactly as ``run_cell`` does (a trained DSH
    model is loaded from the model cache)."""
    from . import storedcodes

    stored = None if codes is None else storedcodes.codes_path(codes, cell.key())
    if stored is not None and stored.is_file():
        from .rescore import stored_cell

        ds, split, c = stored_cell(stored, data_dir, cell.key())
        own = own_model_file(cell, data_dir, models)
        if own is None or not own.is_file() or c.model_sha256 == file_sha256(own):
            return ds, split, c.query_codes, c.db_codes
    ds, split, hasher, X = prepare(cell, data_dir, store, models)
    fit_cell(ds, split, hasher, X)
    return ds, split, hasher.encode(X[split.query]), hasher.encode(X[split.database])


def retrievals(cells, k: int = TOP, data_dir=None, store=None, models=None, codes=None):
    """Rank the database for every query with each cell's codes (:func:`cell_codes`: stored
    in the folder ``codes``, else fitted). All cells must share dataset, protocol and seed,
    so they rank the same split. Returns (dataset, split, list of :class:`Retrieval`)."""
    cells = list(cells)
    if not cells:
        raise InputError("methods: nothing to show")
    if len({(c.dataset, c.protocol, c.seed) for c in cells}) > 1:
        raise InputError("methods: every row must rank the same split (one dataset, protocol and seed)")
    out = []
    ds, split = cell_split(cells[0], data_dir)
    available = len(split.database) - (1 if split.exclude_self else 0)
    if not 1 <= k <= available:
        raise InputError(f"topk: must be between 1 and {available} (the database size), got {k}")
    for cell in cells:
        ds, split, q, d = cell_codes(cell, data_dir, store, models, codes)
        idx, _ = stable_topk(q, d, k, split.self_index())
        top = split.database[idx]
        q_labels = ds.labels[split.query]
        relevant = np.stack([relevance_matrix(q_labels[i : i + 1], ds.labels[top[i]])[0] for i in range(len(top))])
        out.append(Retrieval(name_of(cell), top, relevant))
    return ds, split, out


def select_cases(precision: np.ndarray, n_failed: int, n_successful: int, seed: int) -> list[tuple[str, int]]:
    """The documented rule for the failed and successful cases: sort the queries by
    precision at k of the ranking method, ties in a seeded random order; the ``n_failed``
    first are the failed cases (lowest precision first), the ``n_successful`` last the
    successful ones (highest first). Returns (kind, query position) pairs."""
    n = len(precision)
    check_cases(n_failed, n_successful, n)
    tiebreak = np.random.default_rng([seed, 8]).random(n)
    order = np.lexsort((tiebreak, precision))
    return ([("failed", int(i)) for i in order[:n_failed]]
            + [("successful", int(i)) for i in order[::-1][:n_successful]])


def check_cases(n_failed: int, n_successful: int, n_queries: int) -> None:
    if n_failed < 0 or n_successful < 0 or n_failed + n_successful == 0:
        raise InputError("failed, successful: ask for at least one case, and no negative count")
    if n_failed + n_successful > n_queries:
        raise InputError(f"failed, successful: {n_failed} + {n_successful} cases asked of {n_queries} queries")


def label_text(dataset, index: int) -> str:
    """The label(s) of one image by name: ``label: cat``, or ``labels: sky, clouds``."""
    y = dataset.labels[index]
    if y.ndim == 0:
        return f"label: {dataset.class_names[int(y)]}"
    return "labels: " + (", ".join(dataset.class_names[j] for j in np.flatnonzero(y)) or "none")


def show(cells, stem, queries=None, n_failed: int = 3, n_successful: int = 3, k: int = TOP, seed: int = 0,
         data_dir=None, store=None, models=None, codes=None) -> list[Path]:
    """Figures 7-18: for each case, the query image with its label(s) and each cell's top
    ``k`` side by side, true matches framed in red, the count of matches beside each row.

    ``queries``: dataset indices of query images of the split (one figure each, named
    ``<stem>-query-<index>``); otherwise the cases of :func:`select_cases` ranked by the last
    cell's precision at k (``<stem>-failed-1``, ... ``<stem>-successful-1``, ...). Returns the
    PNG and PDF paths written. ``codes``: a folder of stored codes (``results/codes``); a
    cell stored there is shown from them, without fitting."""
    from .plots import retrieval_grid

    cells = list(cells)
    if not cells:
        raise InputError("methods: nothing to show")
    split = cell_split(cells[0], data_dir)[1]  # the requests are checked before anything is fitted
    if queries is None:
        check_cases(n_failed, n_successful, len(split.query))
    else:
        queries = [int(q) for q in queries]
        if not queries:
            raise InputError("queries: empty list")
        pos = np.searchsorted(split.query, queries)
        bad = [q for q, p in zip(queries, pos, strict=True) if p >= len(split.query) or split.query[p] != q]
        if bad:
            raise InputError(f"queries: image {bad[0]} is not a query of {split.protocol} (seed {split.seed})")
    ds, split, rows = retrievals(cells, k, data_dir, store, models, codes)
    if queries is not None:
        cases = [(f"query-{q}", "", int(p)) for q, p in zip(queries, pos, strict=True)]
    else:
        picked = select_cases(rows[-1].precision(), n_failed, n_successful, seed)
        counts: dict[str, int] = {}
        cases = []
        for kind, p in picked:
            counts[kind] = counts.get(kind, 0) + 1
            cases.append((f"{kind}-{counts[kind]}", f"{kind} case {counts[kind]} of {rows[-1].name}: ", p))
    bits = "/".join(str(b) for b in sorted({c.bits for c in cells}))
    paths = []
    for suffix, case, p in cases:
        q = int(split.query[p])
        title = f"{case}query image {q}, {label_text(ds, q)}   ({split.protocol}, {bits}-bit codes)"
        grid = [(r.name, ds.images[r.top[p]], r.relevant[p]) for r in rows]
        paths += retrieval_grid(ds.images[q], title, grid, f"{stem}-{suffix}")
    return paths



Grids = dict[str, tuple[list, pd.DataFrame]]  # grid name -> (its cells, their rows, in order)


def _first(s: "Setup", cells: list, rows: pd.DataFrame):
    """The cells and rows of the first protocol (models are shared by protocols with the
    same training images, so their figures would repeat)."""
    keep = [c.protocol == s.protocols[0] for c in cells]
    return [c for c, k in zip(cells, keep, strict=True) if k], rows[keep].reset_index(drop=True)


def _draw_figure1(s: "Setup", grids: Grids, stem) -> list[Path]:
    from .plots import files, output_histograms

    cells, rows = _first(s, *grids["table1"])
    ds, split = cell_split(cells[0], s.data_dir)
    images = ds.images[split.query]
    families = {None: [], "sigmoid": []}
    for i, (cell, (_, row)) in enumerate(zip(cells, rows.iterrows(), strict=True)):
        relax = json.loads(cell.params).get("relax")
        title = f"({'abcdefgh'[i]}) {paper_name(row, DEFAULT_VARIANT)}"
        families[relax].append((title, network_outputs(s.trained(cell), images, relax), 0.5 if relax else 0.0))
    output_histograms(list(families.values()), stem)
    return files(stem)


def _draw_figure2(s: "Setup", grids: Grids, stem) -> list[Path]:
    from .plots import files, pr_figure

    rows = grids["table1"][1]
    panels = [[(f"({'abcdefgh'[i]}) {s.dataset}, {p}: 12 bits", part,
                part.apply(paper_name, axis=1, plain=DEFAULT_VARIANT))
               for i, (p, part) in enumerate(rows.groupby("protocol", sort=False))]]
    pr_figure(panels, stem)
    return files(stem)


def _by_bits(s: "Setup", rows: pd.DataFrame) -> list:
    """PR panels of Figures 3 and 5: a row per protocol, a panel per code length."""
    panels = []
    for p, part in rows.groupby("protocol", sort=False):
        panels.append([(f"{s.dataset}, {p}: {b} bits", g, g.apply(paper_name, axis=1))
                       for b, g in part.groupby("bits") if b in PANEL_BITS])
    return panels


def _draw_figure3(s: "Setup", grids: Grids, stem) -> list[Path]:
    from .plots import files, pr_figure

    pr_figure(_by_bits(s, grids["table2"][1]), stem, suptitle="DSH from scratch vs fine-tuned from 12 bits")
    return files(stem)


def _draw_figure4(s: "Setup", grids: Grids, stem) -> list[Path]:
    from .nets import load_history
    from .plots import files, loss_curves

    cells = _first(s, *grids["table2"])[0]
    panels = []
    for letter, finetuned in (("a", False), ("b", True)):
        cell = next(c for c in cells if c.bits == LARGEST_BITS and ("init_from" in json.loads(c.params)) == finetuned)
        title = f"({letter}) {LARGEST_BITS} bits, {'fine-tuned' if finetuned else 'from scratch'} ({s.dataset})"
        panels.append((title, load_history(s.trained(cell))))
    loss_curves(panels, stem)
    return files(stem)


def _draw_figure5(s: "Setup", grids: Grids, stem) -> list[Path]:
    from .plots import files, pr_figure

    tuned = grids["table2"][1]
    tuned = tuned[tuned.apply(variant, axis=1) == "finetuned"]
    rows = pd.concat([tuned, best_ensembles(grids["table3"][1])], ignore_index=True)
    pr_figure(_by_bits(s, rows), stem, suptitle="DSH fine-tuned vs ensembles of 12-bit models")
    return files(stem)


def _draw_figure6(s: "Setup", grids: Grids, stem) -> list[Path]:
    from .plots import figure6, files

    figure6(grids["figure6"][1], stem, pr_bits=LARGEST_BITS)
    return files(stem)


def _draw_figure7(s: "Setup", grids: Grids, stem) -> list[Path]:
    p, hand = s.protocols[0], s.hand_features()
    cells = [s.classic(p, hand, m, LARGEST_BITS) for m in ("lsh", "itq", "cca-itq", "ksh")] + [s.dsh(p, LARGEST_BITS)]
    return show(cells, stem, seed=s.seed, data_dir=s.data_dir, store=s.store, models=s.models,
                codes=codes_dir(stem))  # figure6's stored codes of those cells, when there


# figure -> (the grids of hashbench.reproduce it draws from, its drawer(setup, grids, stem) -> files)
def _draw_leaderboard(s: "Setup", grids: Grids, stem) -> list[Path]:
    from .plots import files, leaderboard_figure, save

    save(leaderboard_figure(grids["leaderboard"][1]), stem)
    return files(stem)


FIGURES: dict[str, tuple[tuple[str, ...], Callable]] = {
    "figure1": (("table1",), _draw_figure1),
    "figure2": (("table1",), _draw_figure2),
    "figure3": (("table2",), _draw_figure3),
    "figure4": (("table2",), _draw_figure4),
    "figure5": (("table2", "table3"), _draw_figure5),
    "figure6": (("figure6",), _draw_figure6),
    "figure7": ((), _draw_figure7),
    "leaderboard": (("leaderboard",), _draw_leaderboard),
}
