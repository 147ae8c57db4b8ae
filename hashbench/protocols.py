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

The field's protocols are here once, each naming its source in its description. Those that
only draw by counts and labels (``portable``) apply to any labelled dataset, list-file
datasets included, and check the counts they need; the others are tied to one dataset's
official files. A cut-off is part of a protocol: ``NAME@K`` is protocol NAME scored with
mAP@K as well as mAP over the whole ranking (the protocol column of every result row says
which); ``lists`` is the split a list-file dataset's own ``train.txt`` / ``test.txt`` /
``database.txt`` give, and ``lists:FOLDER`` the split of list files exported by
``hashbench split export`` (:mod:`hashbench.splits`).
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

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
        """The split's fields, as ``split export`` writes them to ``split.json``."""
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


TRAIN_IN_DATABASE = ("subset", "disjoint", "equal", "any")


@dataclass(frozen=True)
class Protocol:
    name: str
    dataset: str | None  # the dataset it is defined on (None: any labelled dataset)
    description: str  # what it draws, and its source
    sizes: tuple  # (train, query, database) on that dataset; None: "the rest", or not fixed
    query_in_database: bool  # queries may also be database items
    query_in_train: bool  # queries may also be training items
    exclude_self: bool
    seeded: bool  # whether the seed changes the split
    topk: int | None  # None: mAP over the whole ranking; k: also mAP@k
    make: Callable[[Dataset, np.random.Generator], tuple] = field(repr=False)
    portable: bool = False  # applies to any labelled dataset (its counts are checked at split time)
    train_in_database: str = "any"  # training set vs database: subset, disjoint, equal or any

    def applies_to(self, dataset_name: str) -> bool:
        return self.portable or dataset_name == self.dataset

    def expected_sizes(self, n: int) -> tuple:
        """(train, query, database) on a dataset of ``n`` images, "the rest" worked out;
        None where the protocol fixes no count."""
        train, query, database = self.sizes
        if database is None and train is not None and query is not None:
            database = n - query - (train if self.train_in_database == "disjoint" else 0)
        if train is None and self.train_in_database == "equal":
            train = database
        return train, query, database

    def split(self, dataset: Dataset, seed: int) -> Split:
        """The split of ``dataset`` for ``seed``; InputError for a wrong dataset or seed."""
        if not self.applies_to(dataset.name):
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
                raise RuntimeError(f"protocol {self.name}: {part} indices must be non-empty, sorted, unique, "
                                   f"in 0..{n - 1}")
        rules = ((s.database, self.query_in_database, "database"), (s.train, self.query_in_train, "training set"))
        for other, allowed, what in rules:
            if not allowed and (k := np.intersect1d(s.query, other, assume_unique=True).size):
                raise RuntimeError(f"protocol {self.name}: {k:,} queries are also in the {what}")
        if self.exclude_self and (s.self_index() < 0).any():
            raise RuntimeError(f"protocol {self.name}: exclude_self needs every query in the database")
        shared = np.intersect1d(s.train, s.database, assume_unique=True).size
        broken = {"subset": shared != len(s.train), "disjoint": shared != 0,
                  "equal": not np.array_equal(s.train, s.database)}.get(self.train_in_database, False)
        if broken:
            raise RuntimeError(f"protocol {self.name}: training set and database must be {self.train_in_database} "
                               f"({shared:,} images shared)")


def _per_class(ds: Dataset, counts: tuple[int, ...], rng, protocol: str) -> list[np.ndarray]:
    """Per class (in class order): a seeded random permutation of its images, cut into
    consecutive groups of ``counts``; returns one sorted index array per group."""
    if ds.labels.ndim != 1:
        raise InputError(f"protocol {protocol}: draws per class, so it needs single-label data; "
                         f"{ds.name} is multi-label")
    bounds = np.cumsum((0, *counts))
    groups = [[] for _ in counts]
    for c in range(len(ds.class_names)):
        idx = rng.permutation(np.flatnonzero(ds.labels == c))
        if len(idx) < bounds[-1]:
            raise InputError(f"protocol {protocol}: class {ds.class_names[c]!r} has {len(idx)} images, "
                             f"needs {bounds[-1]}")
        for g, lo, hi in zip(groups, bounds[:-1], bounds[1:], strict=True):
            g.append(idx[lo:hi])
    return [np.sort(np.concatenate(g)) for g in groups]


def _official_test_queries(database: str):
    def make(ds: Dataset, rng):
        train, test = np.flatnonzero(ds.train_mask), np.flatnonzero(~ds.train_mask)
        return train, test, test if database == "test" else train

    return make


def _assemble(n: int, query: np.ndarray, train: np.ndarray, train_in_database: str):
    """(train, query, database) once queries and training images are drawn: the database
    is every other image, with or without the training images (or exactly them)."""
    rest = np.setdiff1d(np.arange(n), query)
    if train_in_database == "equal":
        return rest, query, rest
    database = np.setdiff1d(rest, train) if train_in_database == "disjoint" else rest
    return train, query, database


def _per_class_draw(n_query: int, n_train: int | None, train_in_database: str, name: str):
    """``n_query`` queries and ``n_train`` training images per class (training: every
    non-query image when ``train_in_database`` is "equal")."""
    def make(ds: Dataset, rng):
        counts = (n_query,) if n_train is None else (n_query, n_train)
        groups = _per_class(ds, counts, rng, name)
        return _assemble(len(ds), groups[0], groups[-1], train_in_database)

    return make


def _uniform_draw(n_query: int, n_train: int, train_in_database: str, name: str):
    """``n_query`` queries drawn uniformly from all images, then ``n_train`` training images
    from the others (as HashNet's and DeepHash-pytorch's list-making scripts do)."""
    def make(ds: Dataset, rng):
        n = len(ds)
        if n < n_query + n_train + (1 if train_in_database == "disjoint" else 0):
            raise InputError(f"protocol {name}: {ds.name} has {n:,} images, needs at least {n_query + n_train:,} "
                             f"({n_query:,} queries and {n_train:,} training images)")
        query = np.sort(rng.choice(n, n_query, replace=False))
        rest = np.setdiff1d(np.arange(n), query)
        train = np.sort(rng.choice(rest, n_train, replace=False))
        return _assemble(n, query, train, train_in_database)

    return make


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
            raise InputError(f"protocol nuswide-21: concept {ds.class_names[c]!r} has {len(cand)} images left, "
                             "needs 100")
        taken[rng.choice(cand, 100, replace=False)] = True
    rest = np.flatnonzero(~taken)
    return rest, np.flatnonzero(taken), rest


UNSEEN_FRACTION = 0.75
UNSEEN_QUERIES_PER_CLASS = 100


def unseen_classes(n_classes: int, rng) -> np.ndarray:
    """The seeded choice of training ("seen") classes: round(0.75 C) of the C classes
    (halves rounded up: 8 of CIFAR-10's 10), sorted."""
    k = int(np.floor(UNSEEN_FRACTION * n_classes + 0.5))
    if not 1 <= k < n_classes:
        raise InputError(f"protocol unseen: needs at least 2 classes to hold some out, got {n_classes}")
    return np.sort(rng.choice(n_classes, k, replace=False))


def _unseen(name: str):
    """Sablayrolles et al. 2017: train on the images of 75% of the classes; queries and
    database come from the other classes only. Queries: 100 per held-out class (the
    cifar10-1k count); database: the other images of the held-out classes. Multi-label: an
    image is seen when all its labels are seen classes, held out when none is; images with
    both are used nowhere; queries are then 100 x (held-out classes) drawn uniformly."""
    def make(ds: Dataset, rng):
        seen = np.zeros(len(ds.class_names), bool)
        seen[unseen_classes(len(ds.class_names), rng)] = True
        if ds.labels.ndim == 1:
            train = np.flatnonzero(seen[ds.labels])
            query = _per_class_subset(ds, ~seen, rng, name)
            held = np.flatnonzero(~seen[ds.labels])
        else:
            has_seen, has_unseen = ds.labels[:, seen].any(1), ds.labels[:, ~seen].any(1)
            train, held = np.flatnonzero(has_seen & ~has_unseen), np.flatnonzero(has_unseen & ~has_seen)
            n_query = UNSEEN_QUERIES_PER_CLASS * int((~seen).sum())
            if len(held) <= n_query:
                raise InputError(f"protocol {name}: {len(held):,} images carry only held-out labels, "
                                 f"needs more than {n_query:,}")
            query = np.sort(rng.choice(held, n_query, replace=False))
        return train, query, np.setdiff1d(held, query)

    return make


def _per_class_subset(ds: Dataset, classes: np.ndarray, rng, name: str) -> np.ndarray:
    out = []
    for c in np.flatnonzero(classes):
        idx = np.flatnonzero(ds.labels == c)
        if len(idx) <= UNSEEN_QUERIES_PER_CLASS:
            raise InputError(f"protocol {name}: class {ds.class_names[c]!r} has {len(idx)} images, needs more than "
                             f"{UNSEEN_QUERIES_PER_CLASS}")
        out.append(rng.choice(idx, UNSEEN_QUERIES_PER_CLASS, replace=False))
    return np.sort(np.concatenate(out))


def _given_lists(ds: Dataset, rng):
    if ds.lists is None:
        raise InputError(f"protocol lists: {ds.name} has no list files (it is for list:FOLDER datasets and the named "
                         "datasets read from train.txt / test.txt / database.txt)")
    return ds.lists


_CIFAR_DSH = {"dataset": "cifar10", "sizes": (50_000, 10_000, 10_000), "query_in_database": True,
              "query_in_train": False,
                  "seeded": False, "topk": None, "make": _official_test_queries("test")}
_NUS = {"dataset": "nuswide", "sizes": (193_734, 2_100, 193_734), "query_in_database": False, "query_in_train": False,
            "exclude_self": False, "seeded": True, "make": _nuswide_21, "train_in_database": "equal"}
_DIGITS = {"dataset": "digits", "query_in_train": False, "seeded": True, "topk": None}
_DRAWN = {"query_in_database": False, "query_in_train": False, "exclude_self": False, "seeded": True, "portable": True}
_CIFAR_1K = ("100 queries and 500 training images per class, drawn seeded from all 60,000 (CIFAR-10's "
             "6,000 per class)")

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="cifar10-dsh", exclude_self=True, **_CIFAR_DSH,
            description="train on the 50,000 training images; the 10,000 test images are both queries and database "
            "(the DSH authors' evaluation, CIFAR-10/test_map.m of their release), each query's own image left out "
            "of its results",
        ),
        Protocol(
            name="cifar10-dsh-self", exclude_self=False, **_CIFAR_DSH,
            description="exact replica of the DSH authors' released evaluation: as cifar10-dsh, but each query "
            "retrieves itself at distance 0",
        ),
        Protocol(
            name="cifar10-standard", dataset="cifar10", sizes=(50_000, 10_000, 50_000), query_in_database=False,
            query_in_train=False, exclude_self=False, seeded=False, topk=None, make=_official_test_queries("train"),
            train_in_database="equal",
            description="train on the 50,000 training images, which are also the database; queries: the 10,000 test "
            "images (DeepHash-pytorch's cifar10-2)",
        ),
        Protocol(
            name="cifar10-1k", dataset="cifar10", sizes=(5_000, 1_000, 59_000), topk=None,
            make=_per_class_draw(100, 500, "subset", "cifar10-1k"), train_in_database="subset", **_DRAWN,
            description=f"seeded: {_CIFAR_1K}; database: every image that is not a query (59,000, training "
            "images included). The CNNH (Xia et al. AAAI 2014), DNNH (Lai et al. CVPR 2015) and DPSH (Li et al. "
            "IJCAI 2016) protocol; DeepHash-pytorch's cifar10-1",
        ),
        Protocol(
            name="cifar10-1k-hashnet", dataset="cifar10", sizes=(5_000, 1_000, 54_000), topk=54_000,
            make=_per_class_draw(100, 500, "disjoint", "cifar10-1k-hashnet"), train_in_database="disjoint", **_DRAWN,
            description=f"seeded: {_CIFAR_1K}; database: the other 54,000 (training images excluded); mAP@54000, "
            "i.e. over the whole database. The HashNet-style lists of DeepHash-pytorch (its cifar10 setting)",
        ),
        Protocol(
            name="cifar10-1k-all", dataset="cifar10", sizes=(59_000, 1_000, 59_000), topk=None,
            make=_per_class_draw(100, None, "equal", "cifar10-1k-all"), train_in_database="equal", **_DRAWN,
            description="seeded: 100 queries per class; the other 59,000 images are both training set and "
            "database. The second CIFAR-10 setting of DSDH (Li et al. NIPS 2017), cifar10-59000 in its PyTorch "
            "port (TreezzZ/DSDH_PyTorch)",
        ),
        Protocol(
            name="cifar10-unseen", dataset="cifar10", sizes=(48_000, 200, 11_800), topk=None,
            make=_unseen("cifar10-unseen"), train_in_database="disjoint", **_DRAWN,
            description="seeded: train on every image of 8 of the 10 classes (75%, seeded choice); queries: 100 "
            "per held-out class; database: the held-out classes' other 11,800 images, so a classifier of the seen "
            "classes cannot pass for a hash function. Sablayrolles et al. ICASSP 2017 (the query count is ours)",
        ),
        Protocol(
            name="unseen-75", dataset=None, sizes=(None, None, None), topk=None,
            make=_unseen("unseen-75"), train_in_database="disjoint", **_DRAWN,
            description="any labelled dataset: as cifar10-unseen, 75% of the classes (seeded) train, 100 queries "
            "per held-out class, database the held-out classes' other images (multi-label: images whose labels "
            "are all seen train, all held out query / database, mixed unused). Sablayrolles et al. ICASSP 2017",
        ),
        Protocol(
            name="nuswide-81-hashnet", dataset="nuswide-81", sizes=(10_000, 5_000, None), topk=5_000,
            make=_uniform_draw(5_000, 10_000, "subset", "nuswide-81-hashnet"), train_in_database="subset", **_DRAWN,
            description="seeded: 5,000 queries, the rest the database, 10,000 training images drawn from it; "
            "mAP@5000; relevant = shares a concept of the 81. HashNet (Cao et al. ICCV 2017), its nus-wide lists "
            "(DeepHash-pytorch: nuswide_81_m)",
        ),
        Protocol(
            name="coco-hashnet", dataset="coco", sizes=(10_000, 5_000, None), topk=5_000,
            make=_uniform_draw(5_000, 10_000, "subset", "coco-hashnet"), train_in_database="subset", **_DRAWN,
            description="seeded: 5,000 queries, the rest the database (117,218 of HashNet's 122,218 labelled "
            "images), 10,000 training images drawn from it; mAP@5000. HashNet (Cao et al. ICCV 2017)",
        ),
        Protocol(
            name="imagenet100-hashnet", dataset="imagenet100", sizes=(13_000, 5_000, None), topk=1_000,
            make=_per_class_draw(50, 130, "subset", "imagenet100-hashnet"), train_in_database="subset", **_DRAWN,
            description="seeded: 50 queries and 130 training images per class (100 classes: 5,000 and 13,000, "
            "the counts of HashNet's lists), database every non-query image, training included; mAP@1000. "
            "HashNet's own lists take the queries from the validation set: `--protocol lists` uses them as given",
        ),
        Protocol(
            name="mirflickr-deephash", dataset="mirflickr", sizes=(4_000, 1_000, 20_000), topk=None,
            make=_uniform_draw(1_000, 4_000, "disjoint", "mirflickr-deephash"), train_in_database="disjoint",
            **_DRAWN,
            description="seeded: 1,000 queries and 4,000 training images drawn uniformly from MIRFlickr-25K's "
            "25,000, the other 20,000 the database (training excluded); 38 label files; mAP over the whole "
            "ranking. DeepHash-pytorch's data/mirflickr/code.py",
        ),
        Protocol(
            name="lists", dataset=None, sizes=(None, None, None), query_in_database=True, query_in_train=True,
            exclude_self=False, seeded=False, topk=None, make=_given_lists, portable=True,
            description="the split a list-file dataset's own train.txt, test.txt (queries) and database.txt give, "
            "as HashNet and DeepHash-pytorch ship them; overlaps as the files have them (a query the database "
            "also lists retrieves itself, as in the code that ships such lists)",
        ),
        Protocol(
            name="nuswide-21", topk=None, **_NUS,
            description="seeded: 100 queries per concept; the other images are the database and training pool; "
            "relevant = shares at least one of the 21 concepts; mAP over the whole ranking (the DSH paper's "
            "NUS-WIDE; DeepHash-pytorch's nuswide_21 draws the same 2,100 queries and trains on 10,500)",
        ),
        Protocol(
            name="nuswide-21-top5000", topk=5000, **_NUS,
            description="the nuswide-21 split (same seed, same indices), scored with mAP@5000 (the cut of DPSH's "
            "and DeepHash-pytorch's NUS-WIDE tables; same as nuswide-21@5000)",
        ),
        Protocol(
            name="digits-dsh", sizes=(1_297, 500, 500), query_in_database=True, exclude_self=True,
            make=_held_out(True), **_DIGITS,
            description="seeded: 50 images per class held out as both queries and database, each query's own image "
            "left out of its results; training: the other 1,297 (a small cifar10-dsh)",
        ),
        Protocol(
            name="digits-standard", sizes=(1_297, 500, 1_297), query_in_database=False, exclude_self=False,
            make=_held_out(False), train_in_database="equal", **_DIGITS,
            description="seeded: 50 queries per class; the other 1,297 images are training set and database "
            "(a small cifar10-standard)",
        ),
    )
}

LIST_DATASETS = ("nuswide-81", "coco", "imagenet100", "mirflickr")
DEFAULT_PROTOCOLS = {"cifar10": "cifar10-dsh", "nuswide": "nuswide-21", "digits": "digits-dsh",
                     **{name: "lists" for name in LIST_DATASETS}}


def get_protocol(name: str) -> Protocol:
    """A protocol by name: a registered one, ``NAME@K`` (NAME with mAP@K), or ``lists:FOLDER``
    (the split of exported list files, see :mod:`hashbench.splits`)."""
    if name.startswith("lists:"):
        from .splits import imported_protocol

        return imported_protocol(name)
    base, at, k = name.partition("@")
    if base not in PROTOCOLS:
        raise InputError(f"protocol: unknown protocol {base!r}; choose from {', '.join(PROTOCOLS)}, "
                         "NAME@K (mAP@K) or lists:FOLDER")
    if not at:
        return PROTOCOLS[base]
    if not k.isdigit() or int(k) < 1:
        raise InputError(f"protocol {name}: the cut-off after @ must be a positive integer, got {k!r}")
    p = PROTOCOLS[base]
    return dataclasses.replace(p, name=name, topk=int(k), description=f"{p.description}; scored with mAP@{int(k)}")


def default_protocol(dataset_name: str) -> str:
    """The protocol a run uses on ``dataset_name`` when none is given."""
    if dataset_name.startswith("list:"):
        return "lists"
    try:
        return DEFAULT_PROTOCOLS[dataset_name]
    except KeyError:
        raise InputError(f"dataset: no default protocol for {dataset_name!r}; "
                         f"choose from {', '.join(DEFAULT_PROTOCOLS)}") from None
