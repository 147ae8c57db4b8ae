"""Named, seeded, checked splits: which images train a method, which are queries, which form
the database searched.

Every protocol states whether its queries may appear in the database and in the training
set, and :meth:`Protocol.split` checks it on the indices it returns (plus: sorted, unique,
in range, non-empty; with ``exclude_self``, every query is in the database). A split is a
pure function of (dataset, seed): ``np.random.default_rng(seed)`` drives every random choice,
and index arrays come back sorted, so the database order (which breaks ranking ties) is the
dataset order. :meth:`Split.record` gives the fields every result row stores.

``exclude_self``: the query's own image is in the database but is left out of its result
list (the metrics drop ``Split.self_index()``). The DSH authors' released MATLAB keeps it,
so each query retrieves itself at distance 0; ``cifar10-dsh-self`` replicates that exactly.
It barely moves mAP but inflates precision within Hamming radius 2 (on a 48-bit DSH model,
as recorded in the project's reference facts: 0.94 with the query's own image, 0.44 without).
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .datasets import Dataset
from .errors import InputError
from .params import SEED, check


@dataclass(frozen=True, eq=False)
class Split:
    """int64 index arrays into the dataset, sorted."""

    protocol: str
    seed: int
    train: np.ndarray
    query: np.ndarray
    database: np.ndarray
    exclude_self: bool

    def self_index(self) -> np.ndarray:
        """Per query, its position in ``database`` when ``exclude_self`` is set, else -1."""
        out = np.full(len(self.query), -1, np.int64)
        if self.exclude_self:
            order = np.argsort(self.database, kind="stable")
            pos = np.minimum(np.searchsorted(self.database[order], self.query), len(order) - 1)
            hit = self.database[order[pos]] == self.query
            out[hit] = order[pos[hit]]
        return out

    def record(self) -> dict:
        """The split's fields for a result row."""
        return {
            "protocol": self.protocol, "seed": self.seed, "n_train": len(self.train),
            "n_query": len(self.query), "n_database": len(self.database), "exclude_self": self.exclude_self,
        }

    def describe(self) -> str:
        own = "; each query's own image left out of its results" if self.exclude_self else ""
        return (
            f"protocol {self.protocol}, seed {self.seed}: train {len(self.train):,}, "
            f"query {len(self.query):,}, database {len(self.database):,}{own}"
        )


@dataclass(frozen=True)
class Protocol:
    name: str
    dataset: str
    description: str
    sizes: tuple[int, int, int]  # (train, query, database) on the full official dataset
    query_in_database: bool  # queries may also be database items
    query_in_train: bool  # queries may also be training items
    exclude_self: bool
    seeded: bool  # whether the seed changes the split
    topk: int | None  # None: mAP over the whole ranking; k: mAP@k
    make: Callable[[Dataset, np.random.Generator], tuple] = field(repr=False)

    def split(self, dataset: Dataset, seed: int) -> Split:
        """The split of ``dataset`` for ``seed``; InputError for a wrong dataset or seed."""
        if dataset.name != self.dataset:
            raise InputError(f"protocol {self.name} is for dataset {self.dataset}, not {dataset.name}")
        seed = check(seed, "seed", SEED)
        train, query, database = (np.asarray(a, np.int64) for a in self.make(dataset, np.random.default_rng(seed)))
        split = Split(self.name, int(seed), train, query, database, self.exclude_self)
        self._check(split, len(dataset))
        return split

    def _check(self, s: Split, n: int) -> None:
        """The stated rules, on the actual indices; a failure is a bug in the protocol."""
        for part in ("train", "query", "database"):
            a = getattr(s, part)
            if a.ndim != 1 or a.size == 0 or a[0] < 0 or a[-1] >= n or np.any(np.diff(a) <= 0):
                raise RuntimeError(f"protocol {self.name}: {part} indices must be non-empty, sorted, unique, in 0..{n - 1}")
        rules = ((s.database, self.query_in_database, "database"), (s.train, self.query_in_train, "training set"))
        for other, allowed, what in rules:
            if not allowed and (k := np.intersect1d(s.query, other, assume_unique=True).size):
                raise RuntimeError(f"protocol {self.name}: {k:,} queries are also in the {what}")
        if self.exclude_self and (s.self_index() < 0).any():
            raise RuntimeError(f"protocol {self.name}: exclude_self needs every query in the database")


def _per_class(ds: Dataset, counts: tuple[int, ...], rng, protocol: str) -> list[np.ndarray]:
    """Per class (in class order): a seeded random permutation of its images, cut into
    consecutive groups of ``counts``; returns one sorted index array per group."""
    bounds = np.cumsum((0,) + counts)
    groups = [[] for _ in counts]
    for c in range(len(ds.class_names)):
        idx = rng.permutation(np.flatnonzero(ds.labels == c))
        if len(idx) < bounds[-1]:
            raise InputError(f"protocol {protocol}: class {ds.class_names[c]!r} has {len(idx)} images, needs {bounds[-1]}")
        for g, lo, hi in zip(groups, bounds[:-1], bounds[1:]):
            g.append(idx[lo:hi])
    return [np.sort(np.concatenate(g)) for g in groups]


def _official_test_queries(database: str):
    def make(ds: Dataset, rng):
        train, test = np.flatnonzero(ds.train_mask), np.flatnonzero(~ds.train_mask)
        return train, test, test if database == "test" else train

    return make


def _cifar10_1k(ds: Dataset, rng):
    query, train = _per_class(ds, (100, 500), rng, "cifar10-1k")
    return train, query, np.setdiff1d(np.arange(len(ds)), query)


def _held_out(queries_are_database: bool):
    def make(ds: Dataset, rng):
        (query,) = _per_class(ds, (50,), rng, f"digits-{'dsh' if queries_are_database else 'standard'}")
        rest = np.setdiff1d(np.arange(len(ds)), query)
        return rest, query, query if queries_are_database else rest

    return make


def _nuswide_21(ds: Dataset, rng):
    """100 queries per concept, concept by concept (most frequent first), each drawn from
    the images carrying that concept not drawn yet; the rest is database and training pool."""
    taken = np.zeros(len(ds), bool)
    for c in range(ds.labels.shape[1]):
        cand = np.flatnonzero(ds.labels[:, c] & ~taken)
        if len(cand) < 100:
            raise InputError(f"protocol nuswide-21: concept {ds.class_names[c]!r} has {len(cand)} images left, needs 100")
        taken[rng.choice(cand, 100, replace=False)] = True
    rest = np.flatnonzero(~taken)
    return rest, np.flatnonzero(taken), rest


_CIFAR_DSH = dict(dataset="cifar10", sizes=(50_000, 10_000, 10_000), query_in_database=True, query_in_train=False,
                  seeded=False, topk=None, make=_official_test_queries("test"))
_NUS = dict(dataset="nuswide", sizes=(193_734, 2_100, 193_734), query_in_database=False, query_in_train=False,
            exclude_self=False, seeded=True, make=_nuswide_21)
_DIGITS = dict(dataset="digits", query_in_train=False, seeded=True, topk=None)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="cifar10-dsh", exclude_self=True, **_CIFAR_DSH,
            description="train on the 50,000 training images; the 10,000 test images are both queries and database "
            "(the DSH authors' evaluation), each query's own image left out of its results",
        ),
        Protocol(
            name="cifar10-dsh-self", exclude_self=False, **_CIFAR_DSH,
            description="exact replica of the DSH authors' released evaluation: as cifar10-dsh, but each query "
            "retrieves itself at distance 0",
        ),
        Protocol(
            name="cifar10-standard", dataset="cifar10", sizes=(50_000, 10_000, 50_000), query_in_database=False,
            query_in_train=False, exclude_self=False, seeded=False, topk=None, make=_official_test_queries("train"),
            description="train on the 50,000 training images, which are also the database; queries: the 10,000 test images",
        ),
        Protocol(
            name="cifar10-1k", dataset="cifar10", sizes=(5_000, 1_000, 59_000), query_in_database=False,
            query_in_train=False, exclude_self=False, seeded=True, topk=None, make=_cifar10_1k,
            description="seeded: 100 queries and 500 training images per class, from all 60,000; database: every "
            "image that is not a query (training images included)",
        ),
        Protocol(
            name="nuswide-21", topk=None, **_NUS,
            description="seeded: 100 queries per concept; the other images are the database and training pool; "
            "relevant = shares at least one of the 21 concepts; mAP over the whole ranking",
        ),
        Protocol(
            name="nuswide-21-top5000", topk=5000, **_NUS,
            description="the nuswide-21 split (same seed, same indices), scored with mAP@5000",
        ),
        Protocol(
            name="digits-dsh", sizes=(1_297, 500, 500), query_in_database=True, exclude_self=True,
            make=_held_out(True), **_DIGITS,
            description="seeded: 50 images per class held out as both queries and database, each query's own image "
            "left out of its results; training: the other 1,297 (a small cifar10-dsh)",
        ),
        Protocol(
            name="digits-standard", sizes=(1_297, 500, 1_297), query_in_database=False, exclude_self=False,
            make=_held_out(False), **_DIGITS,
            description="seeded: 50 queries per class; the other 1,297 images are training set and database "
            "(a small cifar10-standard)",
        ),
    )
}

DEFAULT_PROTOCOLS = {"cifar10": "cifar10-dsh", "nuswide": "nuswide-21", "digits": "digits-dsh"}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise InputError(f"protocol: unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}") from None


def default_protocol(dataset_name: str) -> str:
    """The protocol a run uses on ``dataset_name`` when none is given."""
    try:
        return DEFAULT_PROTOCOLS[dataset_name]
    except KeyError:
        raise InputError(f"dataset: no default protocol for {dataset_name!r}; choose from {', '.join(DEFAULT_PROTOCOLS)}") from None
