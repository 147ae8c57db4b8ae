"""The ``hashbench`` command: argparse front end only (parse, call, print).

Each subcommand is a ``_cmd_<name>(args)`` function plus its parser in ``build_parser``.
User errors (:class:`InputError`) print one line and exit with code 2, no traceback.
"""

import argparse
import json
import os
import sys

from .backends import CellsFailed
from .errors import InputError
from .nets.schedules import BUDGET_HELP, parse_budget


def _cmd_evaluate(args) -> int:
    from .codes import read_codes
    from .io import load_array
    from .labels import check_labels
    from .metrics import evaluate

    arrays = [args.query_codes, args.db_codes, args.query_labels, args.db_labels]
    if args.stored is not None:
        if any(a is not None for a in arrays):
            raise InputError("--stored: give a stored cell or the four arrays, not both")
        return _evaluate_stored(args)
    if any(a is None for a in arrays):
        raise InputError("give --query-codes, --db-codes, --query-labels and --db-labels (or --stored CELL)")
    q, kq = read_codes(load_array(args.query_codes, "--query-codes"), args.bits, "--query-codes")
    d, kd = read_codes(load_array(args.db_codes, "--db-codes"), args.bits, "--db-codes")
    if kq != kd:
        raise InputError(f"--query-codes {args.query_codes} has {kq} bits but --db-codes {args.db_codes} has {kd}")
    ql = check_labels(load_array(args.query_labels, "--query-labels"), q.shape[0],
                      f"--query-labels {args.query_labels}")
    dl = check_labels(load_array(args.db_labels, "--db-labels"), d.shape[0], f"--db-labels {args.db_labels}")
    if args.radius < 0:
        raise InputError(f"--radius must be >= 0, got {args.radius}")
    if args.topk is not None and args.topk <= 0:
        raise InputError(f"--topk must be positive, got {args.topk}")
    res = evaluate(q, d, ql, dl, n_bits=kq, radius=args.radius, topk=args.topk, pr_rule=args.pr_rule)
    if args.json:
        print(json.dumps(res, indent=None))
    else:
        from .metrics import format_report

        print(format_report(res))
    return 0


def _evaluate_stored(args) -> int:
    from .metrics import evaluate, format_report
    from .rescore import stored_cell
    from .storedcodes import resolve

    if args.bits is not None:
        raise InputError("--bits: a stored cell knows its code length")
    ds, split, codes = stored_cell(resolve(args.stored), args.data_dir)
    if args.radius < 0:
        raise InputError(f"--radius must be >= 0, got {args.radius}")
    if args.topk is not None and args.topk <= 0:
        raise InputError(f"--topk must be positive, got {args.topk}")
    res = evaluate(codes.query_codes, codes.db_codes, ds.labels[split.query], ds.labels[split.database],
                   n_bits=codes.n_bits, radius=args.radius, topk=args.topk, self_index=split.self_index(),
                   pr_rule=args.pr_rule)
    print(json.dumps(res, indent=None) if args.json else format_report(res))
    return 0


def _cmd_results(args) -> int:
    from .migration import migrate

    for path in args.files:
        print(migrate(path))
    return 0


def _cmd_rescore(args) -> int:
    from .rescore import rescore

    print(rescore(args.results, data_dir=args.data_dir, skip_missing=args.skip_missing))
    return 0


def _cmd_export(args) -> int:
    from .export import export_faiss

    print(export_faiss(args.cell, args.faiss))
    return 0


def _cmd_split(args) -> int:
    from . import splits

    if args.split_command == "export":
        print(splits.export(args.protocol, args.seed, args.out, args.dataset, args.data_dir))
    else:
        print(splits.import_(args.folder, args.dataset, args.data_dir))
    return 0


def _cmd_download(args) -> int:
    from .datasets import download

    _, message = download(args.dataset, args.data_dir, fmt=args.format, progress=not args.quiet)
    print(message)
    return 0


def _cmd_datasets(args) -> int:
    from tabulate import tabulate

    from .datasets import data_roots, describe_datasets
    from .protocols import PROTOCOLS

    print("data folders searched: " + ", ".join(str(r) for r in data_roots(args.data_dir)))
    print(tabulate(describe_datasets(args.data_dir), headers="keys", tablefmt="simple"))
    print()
    def count(v):
        return "rest" if v is None else f"{v:,}"

    rows = [
        {"protocol": p.name, "dataset": p.dataset or "any", "train": count(p.sizes[0]), "query": count(p.sizes[1]),
         "database": count(p.sizes[2]), "mAP cut": "all" if p.topk is None else f"@{p.topk}",
         "seeded": "yes" if p.seeded else "no", "description": p.description}
        for p in PROTOCOLS.values()
    ]
    print(tabulate(rows, headers="keys", tablefmt="simple", maxcolwidths=[None] * 7 + [70]))
    print("NAME@K: protocol NAME also scored with mAP@K; lists:FOLDER: a split exported by `hashbench split export`")
    return 0


def _comma_list(text: str, arg: str, convert=str) -> list:
    """``a,b,c`` -> [convert(a), ...]; an empty item or a failed conversion is an InputError."""
    items = [t.strip() for t in text.split(",")]
    try:
        if "" in items:
            raise ValueError
        return [convert(t) for t in items]
    except ValueError:
        raise InputError(f"{arg}: expected a comma-separated list, got {text!r}") from None


def _n_labelled(text):
    """``--n-labelled 1000,2000,all`` -> [1000, 2000, "all"] (a grid axis); None -> None."""
    if text is None:
        return None
    return _comma_list(text, "--n-labelled", lambda t: t if t == "all" else int(t))


def _experiment(args):
    """The grid of ``run`` (and ``show``): from ``--config FILE.toml``, or built from the flags."""
    from . import config

    flags = [f"--{k.replace('_', '-')}" for k in ("methods", "bits", "features", "dataset", "protocol", "seed",
                                                    "seeds", "n_labelled") if getattr(args, k, None) is not None]
    flags += ["--param"] if getattr(args, "param", None) else []
    if getattr(args, "config", None) is not None:
        if flags:
            raise InputError(f"--config describes the whole grid; drop {', '.join(flags)} (or edit the file)")
        return config.load(args.config)
    if args.methods is None:
        raise InputError("give --methods (e.g. lsh,itq,ksh) or --config FILE.toml")
    if args.seed is not None and getattr(args, "seeds", None) is not None:
        raise InputError("give --seed or --seeds, not both")
    seeds = _comma_list(args.seeds, "--seeds", int) if getattr(args, "seeds", None) is not None else [args.seed or 0]
    return config.from_flags(
        methods=_comma_list(args.methods, "--methods"),
        bits=_comma_list(str(args.bits), "--bits", int) if args.bits is not None else config.DEFAULT_BITS,
        seeds=seeds,
        features=_comma_list(args.features, "--features") if args.features else None,
        datasets=_comma_list(args.dataset, "--dataset") if args.dataset else ["auto"],
        protocols=_comma_list(args.protocol, "--protocol") if args.protocol else None,
        n_labelled=_n_labelled(args.n_labelled),
        params=getattr(args, "param", None) or (),
    )


def _cmd_run(args) -> int:
    from .backends import open_backend
    from .experiment import check_outputs, run_grid
    from .paths import in_workdir
    from .report import format_table
    from .results import check_output

    def log(line):
        print(line, file=sys.stderr)

    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    notices = []
    experiment = _experiment(args)
    cells = experiment.cells(data_dir=args.data_dir, log=notices.append)
    backend, scheduler = args.backend, args.scheduler  # the flags win over the file's backend and scheduler
    if backend is None:
        backend, scheduler = experiment.backend or "processes", scheduler or experiment.scheduler
    out = args.out or in_workdir("results/run.csv")
    check_output(out)  # the outputs before the notices: an error comes alone
    check_outputs(cells, args.store)
    for line in notices:
        log(line)
    with open_backend(backend, scheduler, plugins=getattr(args, "plugin", ()), log=log) as pool:
        rows = run_grid(cells, out, force=args.force, jobs=args.jobs, data_dir=args.data_dir,
                        store=args.store, log=log, retrain=args.retrain, backend=pool)
    if args.lookup_cost:
        from .report import DISPLAY_COLUMNS
        from .search import LOOKUP_COLUMNS, lookup_columns

        print(format_table(lookup_columns(rows, out), columns=DISPLAY_COLUMNS + LOOKUP_COLUMNS))
        return 0
    print(format_table(rows))
    return 0


def _cmd_reproduce(args) -> int:
    from .paper import variant
    from .report import DISPLAY_COLUMNS, format_table
    from .reproduce import reproduce

    budget = parse_budget(args.budget)
    protocols = _comma_list(args.protocol, "--protocol") if args.protocol else None
    if args.print_config:
        from .reproduce import print_config

        print(print_config(args.name, dataset=args.dataset, budget=budget, protocols=protocols, seed=args.seed,
                           data_dir=args.data_dir), end="")
        return 0
    rows, table, figures = reproduce(
        args.name, dataset=args.dataset, budget=budget, protocols=protocols, seed=args.seed,
        out_dir=args.out_dir, jobs=args.jobs, force=args.force, retrain=args.retrain, data_dir=args.data_dir,
        store=args.store, log=lambda line: print(line, file=sys.stderr), backend=args.backend or "processes",
        scheduler=args.scheduler, plugins=getattr(args, "plugin", ()))
    at = DISPLAY_COLUMNS.index("n_labelled") + 1
    columns = (*DISPLAY_COLUMNS[:at], "variant", *DISPLAY_COLUMNS[at:])
    if len(rows):  # figure7 draws from no result grid
        rows = rows.assign(features=rows["features"].str.split(":").str[0], variant=rows.apply(variant, axis=1))
        print(format_table(rows, columns=columns))
        print()
        print(f"ours against the paper ({args.name}):")
        print(format_table(table, columns=tuple(table.columns)) if len(table)
              else "(the paper reports no number for these cells)")
    for path in figures:
        print(f"figure: {path}")
    return 0


def _cmd_bench_search(args) -> int:
    from .searchbench import bench_search

    rows = bench_search(
        sizes=_comma_list(args.sizes, "--sizes"), bits=_comma_list(args.bits, "--bits", int),
        strategies=_comma_list(args.strategies, "--strategies") if args.strategies else None,
        codes=args.codes, queries=_comma_list(args.queries, "--queries", int) if args.queries else None,
        k=args.topk, radius=args.radius,
        seed=args.seed, noise=args.noise, out=args.out, workdir=args.workdir, max_seconds=args.max_seconds,
        truth_queries=args.truth_queries, dataset=args.dataset, features=args.features, data_dir=args.data_dir,
        store=args.store, force=args.force, log=lambda line: print(line, file=sys.stderr))
    from tabulate import tabulate

    cols = ["n_database", "bits", "strategy", "task", "qps", "recall", "exact", "build_s", "index_mb", "status"]
    print(tabulate(rows[cols], headers=cols, showindex=False, floatfmt=".4g"))
    return 0


def _cmd_show(args) -> int:
    from .experiment import check_outputs
    from .figures import plan_show, show
    from .io import check_writable
    from .paths import in_workdir

    budget = parse_budget(args.budget)
    stem = args.out or in_workdir("results/show")
    check_writable(f"{stem}-x.png", "--out")
    cells = plan_show(_experiment(args).cells(data_dir=args.data_dir, log=lambda line: print(line, file=sys.stderr)),
                      budget)
    check_outputs(cells, args.store)
    queries = _comma_list(args.queries, "--queries", int) if args.queries else None
    paths = show(cells, stem, queries=queries, n_failed=args.failed, n_successful=args.successful, k=args.topk,
                 seed=args.seed or 0, data_dir=args.data_dir, store=args.store, codes=args.codes or None)
    for path in paths:
        print(f"figure: {path}")
    return 0


def _cmd_report(args) -> int:
    from . import report

    if args.markdown:
        if args.out:
            raise InputError("give --out SITE or --markdown, not both")
        if args.readme:
            changed = report.update_readme(args.readme, args.results)
            print(f"{args.readme}: {'tables regenerated' if changed else 'tables already up to date'}")
        else:
            print(report.markdown_text(report.markdown_tables(args.results)), end="")
        return 0
    if not args.out:
        raise InputError("give --out SITE (the folder to write the site to) or --markdown")
    if args.readme:
        raise InputError("--readme goes with --markdown")
    res = report.build_site(args.results, args.out)
    for line in res.missing_lines():
        print(f"missing: {line}", file=sys.stderr)
    print(f"site: {os.path.join(args.out, 'index.html')}")
    return 0


def _params(texts) -> dict:
    """``features extract --param KEY=VALUE`` options as a dict (VALUE read as JSON, else a string)."""
    from .features import parse_param

    params = {}
    for text in texts:
        key, value = parse_param(text)
        if key in params:
            raise InputError(f"--param: {key} given twice")
        params[key] = value
    return params


def _cmd_methods(args) -> int:
    from .features.base import EXTRACTORS
    from .features.base import ORIGINS as EXTRACTOR_ORIGINS
    from .hashers import HASHERS
    from .hashers.base import describe_method

    for name in sorted(HASHERS):
        d = describe_method(name)
        print(f"{name}  ({d['label']}; {d['origin']})  {d['doc']}")
        print(f"    input: {d['input']}; declares: {', '.join(d['declares']) or 'nothing (unsupervised)'}")
        print("    parameters: " + ", ".join(f"{k}={v!r}" for k, v in d["params"].items()))
    print()
    print("extractors: " + ", ".join(f"{n} ({EXTRACTOR_ORIGINS[n]})" for n in sorted(EXTRACTORS)))
    return 0


def _cmd_features(args) -> int:
    from .datasets import load_dataset
    from .features import FeatureStore, get_extractor
    from .io import check_writable

    extractor = get_extractor(args.name, **_params(args.param))
    store = FeatureStore(args.store)
    check_writable(store.root, "--store", folder=True)
    dataset = load_dataset(args.dataset, args.data_dir)
    X = store.get(dataset, extractor, report=lambda line: print(line, file=sys.stderr))
    print(f"{store.path(dataset, extractor)}: {X.shape[0]} x {X.shape[1]} float32 ({extractor.key()})")
    return 0


def _cmd_train_cnn(args) -> int:
    import shlex

    import torch

    from . import training

    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    budget = parse_budget(args.budget)
    # the record names every effective option, defaults included, so it reruns as it ran
    opts = ["bits", "seed", "budget", "protocol", "alpha", "relax", "margin", "init_from", "device", "threads",
            "data_dir"] if args.kind == "dsh" else ["seed", "budget", "protocol", "device", "threads", "data_dir"]
    words = ["train-cnn", args.kind, "--out", args.out]
    for o in opts:
        if getattr(args, o) is not None:
            words += ["--" + o.replace("_", "-"), str(getattr(args, o))]
    common = {"seed": args.seed, "schedule": budget, "protocol": args.protocol, "device": args.device,
              "data_dir": args.data_dir, "command": "hashbench " + shlex.join(words), "progress": not args.quiet}
    if args.kind == "dsh":
        rec = training.train_dsh(args.out, bits=args.bits, alpha=args.alpha, relax=args.relax, margin=args.margin,
                                 init_from=args.init_from, **common)
    else:
        rec = training.train_classifier(args.out, **common)
    print(json.dumps(rec, indent=2))
    return 0


def _set_workdir(folder: str) -> None:
    """``--workdir``: the folder the default results, features and models go in (checked
    now), for this process and the worker processes it starts."""
    from .io import check_writable
    from .paths import HOME_ENV

    check_writable(folder, "--workdir", folder=True)
    os.environ[HOME_ENV] = folder


class _Formatter(argparse.HelpFormatter):
    """Wraps help at spaces only, so that names such as cifar10-dsh stay whole."""

    def _split_lines(self, text, width):
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Deprecated(argparse.Action):
    """The old spelling of a renamed option: still accepted, with a one-line warning on
    stderr, and hidden from --help."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _parent(*flags, **kwargs) -> argparse.ArgumentParser:
    """A parent parser holding one option, declared once for every command that takes it."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(*flags, **kwargs)
    return p


def _backend_parent() -> argparse.ArgumentParser:
    from .backends import BACKENDS

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--backend", choices=BACKENDS, help="where cells run: processes (joblib "
                   "processes on this machine, --jobs at a time; default, unless a --config file sets backend) "
                   "or dask (a Dask cluster; needs hashbench[dask])")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --backend dask: the scheduler, e.g. "
                   "tcp://host:8786 (default: a LocalCluster of one single-thread worker per core, here)")
    return p


def _cells_parent(extractors: str, datasets: str, protocols: str) -> argparse.ArgumentParser:
    """The options that pick the cells of ``run`` and ``show`` (besides methods and bits)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--features", help=f"comma list of extractors ({extractors}) for feature methods (default: "
                   "gist for images of 32 px or more, else pixels); methods that take images ignore it")
    p.add_argument("--dataset", help=f"comma list of datasets ({datasets}); default auto: the protocol's "
                   "dataset, else cifar10 when found, else the bundled digits; list:FOLDER for images given by "
                   "list files")
    p.add_argument("--protocol", help=f"comma list of split protocols ({protocols}; NAME@K, lists:FOLDER); "
                   "default: the dataset's default (`hashbench datasets` describes them)")
    p.add_argument("--seed", type=int, help="one seed for split, hasher, labelled subset and tie-breaks "
                   "(default 0)")
    p.add_argument("--n-labelled", help="comma list (a grid axis; show: one row per value) of labelled training "
                   "images for methods that learn from a labelled subset: counts or all (default: each method's "
                   "own default)")
    return p


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .datasets import DATASETS
    from .datasets.archives import ARCHIVES
    from .features import EXTRACTORS
    from .hashers import HASHERS
    from .protocols import PROTOCOLS
    from .reproduce import NAMES

    methods, extractors = ", ".join(sorted(HASHERS)), ", ".join(sorted(EXTRACTORS))
    datasets, protocols = ", ".join(DATASETS), ", ".join(PROTOCOLS)
    p = argparse.ArgumentParser(prog="hashbench", formatter_class=_Formatter, description="Learning-to-hash image "
                                "retrieval under one protocol with exact metrics; reproduces Deep Supervised Hashing "
                                "(CVPR 2016).")
    p.add_argument("--version", action="version", version=f"hashbench {__version__}")
    # --plugin, on every command (main() reads it first)
    plugin = _parent("--plugin", action="append", default=[], metavar="MODULE",
                     help="import MODULE first: it registers its methods or extractors (repeatable)")

    def with_plugin(*args, parents=(), **kwargs):
        return argparse.ArgumentParser(*args, parents=[plugin, *parents], formatter_class=_Formatter, **kwargs)

    sub = p.add_subparsers(dest="command", required=True, parser_class=with_plugin)
    data_dir = _parent("--data-dir", help="searched before $HASHBENCH_DATA and the user cache folder")
    store = _parent("--store", help="feature store folder (default features/ in the working folder)")
    workdir = _parent("--workdir", help="working folder for the default results/, features/ and runs/models/ "
                      "(default $HASHBENCH_HOME, else the current folder)")
    budget = _parent("--budget", default="quick", help=f"DSH training schedule: {BUDGET_HELP}; a shortened "
                     "schedule scales its lr steps (smoke tests, or a grid that must fit a time limit; the budget "
                     "is part of each cell)")
    backend = _backend_parent()
    cells = _cells_parent(extractors, datasets, protocols)

    e = sub.add_parser("evaluate", parents=[data_dir], help="score codes of any method under the hashbench metrics")
    e.add_argument("--query-codes", help=".npy or text (.txt/.csv) (n, k) {0,1} or +-1, "
                   "or .npy packed uint8 bytes with --bits")
    e.add_argument("--db-codes", help=".npy or text database codes, same format as the queries")
    e.add_argument("--query-labels", help=".npy or text (n,) class ids or (n, c) multi-hot")
    e.add_argument("--db-labels", help=".npy or text database labels")
    e.add_argument("--stored", metavar="CELL", help="instead of the four arrays: a stored cell, its codes file "
                   "(results/codes/<id>.npz) or RESULTS.csv:N (the N-th row); labels and split from the dataset "
                   "(found as --data-dir says)")
    e.add_argument("--bits", type=int, help="code length: needed for packed uint8 "
                   "codes, checked against 0/1 or +-1 columns (one bit each)")
    e.add_argument("--radius", type=int, default=2, help="Hamming radius for precision (default 2)")
    e.add_argument("--topk", type=int, help="also report mAP@k and precision@k")
    e.add_argument("--pr-rule", choices=["clean", "released"], default="clean", help="PR at recall levels: clean "
                   "(default) or released (the DSH authors' compute_precision_recall.m, as it computes)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_cmd_evaluate)

    dl = sub.add_parser("download", help="fetch a dataset's official archive (progress bar, md5 check, resumable)")
    downloadable = sorted({name for name, _ in ARCHIVES})
    dl.add_argument("dataset", help=f"{', '.join(downloadable)} (the others are bundled, distributed on request, "
                    "or given by list files: `hashbench datasets`)")
    dl.add_argument("--format", default="bin", help="archive format: " + "; ".join(
        f"{name}: {' or '.join(f for n, f in ARCHIVES if n == name)}" for name in downloadable) + " (default bin)")
    dl.add_argument("--data-dir", help="where to put it (default: the user cache folder)")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    dl.set_defaults(func=_cmd_download)

    ds = sub.add_parser("datasets", parents=[data_dir], help="list datasets, where their data was found, and the "
                        "protocols")
    ds.set_defaults(func=_cmd_datasets)
    sp = sub.add_parser("split", help="write a protocol's split as list files for other codebases, or read them back")
    spsub = sp.add_subparsers(dest="split_command", required=True, parser_class=with_plugin)
    se = spsub.add_parser("export", parents=[data_dir], help="train.txt, test.txt (queries), database.txt: "
                          "'NAME 0 1 0 ...' per image")
    se.add_argument("protocol", help=f"a protocol ({protocols}), NAME@K included")
    se.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    se.add_argument("--out", required=True, help="folder to write the lists to")
    se.add_argument("--dataset", help="default: the protocol's dataset; list:FOLDER or any dataset for portable ones")
    si = spsub.add_parser("import", parents=[data_dir], help="check exported lists against their dataset; "
                          "run them with --protocol lists:FOLDER")
    si.add_argument("folder", help="folder holding train.txt, test.txt and database.txt")
    si.add_argument("--dataset", help="the dataset the lists are a split of (default: the one split.json names)")
    sp.set_defaults(func=_cmd_split)

    r = sub.add_parser("run", parents=[cells, data_dir, store, workdir, backend],
                       help="fit, encode and score a grid of cells; one CSV row per cell, resumable")
    r.add_argument("--config", metavar="FILE.toml", help="the whole grid as a TOML file (datasets, protocols, "
                   "features, methods with their own parameter grids, bits, seeds, n_labelled; see "
                   "`hashbench reproduce table1 --print-config`); replaces the grid flags")
    r.add_argument("--methods", help=f"comma list of hashing methods: {methods} (`hashbench methods` "
                   "describes them)")
    r.add_argument("--bits", help="comma list of code lengths (default 12,24,36,48)")
    r.add_argument("--seeds", help="comma list of seeds, one cell each (instead of --seed)")
    r.add_argument("--param", action="append", default=[], metavar="[METHOD.]KEY=VALUE",
                   help="hasher parameter, repeatable: ksh.n_anchors=1000 for one method, a bare KEY for every "
                   "selected method that takes it (an error if none does); a comma list is a grid axis "
                   "(ksh.n_anchors=300,1000); VALUE is JSON or a word")
    r.add_argument("--out", help="result CSV; cells already in it are skipped "
                   "(default results/run.csv in the working folder)")
    r.add_argument("--force", action="store_true", help="rerun cells already in --out and replace their rows "
                   "(trained models are loaded)")
    r.add_argument("--retrain", action="store_true", help="as --force, and train the cells' models again")
    r.add_argument("--jobs", type=int, default=1, help="cells run in parallel (joblib processes; default 1)")
    r.add_argument("--lookup-cost", action="store_true", help="also show what radius-2 retrieval costs per cell "
                   "(multi-index hashing: candidates per query, queries/s at the dataset's size)")
    r.set_defaults(func=_cmd_run)

    rp = sub.add_parser("reproduce", parents=[budget, data_dir, store, workdir, backend],
                        help="re-run one of the paper's experiments next to its published numbers")
    rp.add_argument("name", choices=list(NAMES), help="the table or figure (figure1-5 and figure7 draw on the "
                    "grids of the tables they illustrate, reusing their stored rows and trained models)")
    rp.add_argument("--dataset", default="cifar10", help="cifar10 (default), nuswide (needs its images) or digits")
    rp.add_argument("--protocol", help="comma list; default: both cifar10-dsh and cifar10-standard on CIFAR-10")
    rp.add_argument("--seed", type=int, default=0, help="split and model seed (default 0)")
    rp.add_argument("--out-dir", help="where NAME.csv, NAME-vs-paper.csv and figures go (default results/ in the "
                    "working folder)")
    rp.add_argument("--jobs", type=int, default=3, help="cells run in parallel, in joblib processes that split the "
                    "cores between them (default 3: table4's three CNNs train side by side, 45 min instead of about "
                    "65 on 2 cores; 1 runs one cell at a time on all cores)")
    rp.add_argument("--force", action="store_true", help="rerun cells already in the result file (trained "
                    "models are loaded)")
    rp.add_argument("--retrain", action="store_true", help="as --force, and train the cells' models again")
    rp.add_argument("--print-config", action="store_true", help="print the experiment's grids as a `run --config` "
                    "TOML file and exit (nothing runs; grids whose features or models come from an earlier "
                    "stage name the files that stage writes)")
    rp.set_defaults(func=_cmd_reproduce)

    me = sub.add_parser("methods", help="list every hashing method: origin (built-in or plugin), declarations, "
                        "parameters with defaults; and the feature extractors")
    me.set_defaults(func=_cmd_methods)

    sh = sub.add_parser("show", parents=[cells, budget, data_dir, store, workdir],
                        help="top-10 retrievals of each method side by side, true matches framed in red "
                        "(the supplementary's Figures 7-18)")
    sh.add_argument("--methods", default="lsh,itq,cca-itq,ksh,dsh", help=f"comma list of methods ({methods}), one "
                    "row each (default lsh,itq,cca-itq,ksh,dsh); the last one ranks the failed and successful cases")
    sh.add_argument("--bits", type=int, default=48, help="code length (default 48, as the paper's figures)")
    sh.add_argument("--queries", help="comma list of dataset indices of query images to show, one figure each; "
                    "default: the failed and successful cases")
    sh.add_argument("--failed", type=int, default=3, help="cases of lowest precision@10 of the last method (default 3)")
    sh.add_argument("--successful", type=int, default=3, help="cases of highest precision@10 (default 3)")
    sh.add_argument("--topk", type=int, default=10, help="retrieved images per row (default 10)")
    sh.add_argument("--top", type=int, dest="topk", action=_Deprecated, new="--topk")
    sh.add_argument("--codes", default="results/codes", help="folder of stored codes: a cell stored there is "
                    "shown from its codes, without fitting (default results/codes; '' to fit every cell)")
    sh.add_argument("--out", help="file stem: STEM-failed-1.png/.pdf, ... (default results/show in the working "
                    "folder)")
    sh.set_defaults(func=_cmd_show)

    rpt = sub.add_parser("report", help="the result files as a static HTML site (opens offline), or the README's "
                         "result tables as Markdown")
    rpt.add_argument("--results", default="results", help="folder of result CSVs and figures (default results)")
    rpt.add_argument("--out", help="folder to write the site to (replaced whole; a folder report did not write "
                     "is refused)")
    rpt.add_argument("--markdown", action="store_true", help="print the README's result tables instead")
    rpt.add_argument("--readme", help="with --markdown: rewrite the tables between the report markers of this "
                     "README in place")
    rpt.set_defaults(func=_cmd_report)

    f = sub.add_parser("features", help="compute feature matrices into the feature store")
    fsub = f.add_subparsers(dest="features_command", required=True, parser_class=with_plugin)
    fe = fsub.add_parser("extract", parents=[store, data_dir, workdir],
                         help="features of every image of a dataset, reused when already stored")
    fe.add_argument("name", help=f"extractor: {extractors}")
    fe.add_argument("--dataset", required=True, help=f"{datasets}, or list:FOLDER")
    fe.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="extractor parameter, repeatable; VALUE is JSON or a word, e.g. mode=lmgist, "
                    "color=true, orientations=[8,8,4]")
    fe.set_defaults(func=_cmd_features)

    bs = sub.add_parser("bench-search", parents=[data_dir, store],
                        help="search speed of hash codes at 1M-10M items: ours, multi-index "
                        "hashing, FAISS; QPS, build time, memory, recall -> CSV + figure")
    bs.add_argument("--sizes", default="1M,10M", help="database sizes (default 1M,10M); 10M is read from disk")
    bs.add_argument("--bits", default="32,64,128", help="code lengths (default 32,64,128)")
    bs.add_argument("--codes", default="random", help="random (default), or a method (itq, lsh, ...) whose "
                    "codes of real images are replicated with bit noise to the size")
    bs.add_argument("--strategies", help=f"comma list (default all): {', '.join(_search_strategies())}")
    bs.add_argument("--queries", help="queries per size: one count or one per size (default 1,000 up to 1M codes, "
                    "200 above)")
    bs.add_argument("--topk", type=int, default=100, help="top-k task (default 100)")
    bs.add_argument("--k", type=int, dest="topk", action=_Deprecated, new="--topk")
    bs.add_argument("--radius", type=int, default=2, help="radius task (default 2)")
    bs.add_argument("--seed", type=int, default=0)
    bs.add_argument("--noise", type=float, default=0.05, help="bit-flip probability of replicated codes (default 0.05)")
    bs.add_argument("--truth-queries", type=int, default=100,
                    help="queries checked against exhaustive numpy (default 100)")
    bs.add_argument("--max-seconds", type=float, default=300,
                    help="skip a strategy projected to take longer (default 300)")
    bs.add_argument("--dataset", default="auto", help="dataset of --codes METHOD (default auto)")
    bs.add_argument("--features", default="pixels", help="features of --codes METHOD (default pixels)")
    bs.add_argument("--out", default="results/search-speed.csv", help="CSV (the figure goes next to it as .png/.pdf)")
    bs.add_argument("--workdir", default="runs/search",
                    help="where database code files are written (default runs/search)")
    bs.add_argument("--force", action="store_true", help="rerun cells already in --out")
    bs.set_defaults(func=_cmd_bench_search)
    rs = sub.add_parser("results", help="maintain result files")
    rsub = rs.add_subparsers(dest="results_command", required=True, parser_class=with_plugin)
    rm = rsub.add_parser("migrate", help="rewrite result files of an older schema in the current one (once)")
    rm.add_argument("files", nargs="+", metavar="FILE", help="result CSVs")
    rm.set_defaults(func=_cmd_results)

    sc = sub.add_parser("rescore", parents=[data_dir], help="recompute every metric of a result file from its "
                        "stored codes, fitting nothing")
    sc.add_argument("results", metavar="RESULTS.csv", help="a result file; its codes are in codes/ beside it")
    sc.add_argument("--skip-missing", action="store_true", help="leave rows without stored codes as they are")
    sc.set_defaults(func=_cmd_rescore)

    ex = sub.add_parser("export", help="write a stored cell's database codes for another library")
    ex.add_argument("cell", metavar="CELL", help="its codes file (results/codes/<id>.npz) or RESULTS.csv:N")
    ex.add_argument("--faiss", required=True, metavar="FILE", help="a faiss.IndexBinaryFlat file (needs "
                    "hashbench[faiss])")
    ex.set_defaults(func=_cmd_export)

    t = sub.add_parser("train-cnn", parents=[budget, data_dir, workdir],
                       help="train a DSH model or the CNN-cls classifier; save it (.pt) with a JSON record")
    t.add_argument("kind", choices=["dsh", "cls"],
                   help="dsh: k-bit DSH (CNN-ours features); cls: 10-way softmax (CNN-cls)")
    t.add_argument("--out", required=True,
                   help="model file NAME.pt; NAME.json gets the record, NAME.ckpt the resumable state")
    t.add_argument("--bits", type=int, default=12, help="DSH code length (default 12)")
    t.add_argument("--seed", type=int, default=0, help="initialisation, data order and mirroring (default 0)")
    t.add_argument("--schedule", dest="budget", action=_Deprecated, new="--budget")
    t.add_argument("--protocol", default="cifar10-dsh", help="split whose training images train the model and "
                   "whose queries score it (default cifar10-dsh)")
    t.add_argument("--alpha", type=float, default=0.01, help="DSH regulariser weight (default 0.01)")
    t.add_argument("--relax", choices=["sigmoid"], help="the sigmoid-relaxed DSH variant (needs --margin)")
    t.add_argument("--margin", type=float, help="DSH margin (default 2 x bits)")
    t.add_argument("--init-from", help="fine-tune from this trained DSH model (.pt)")
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    t.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train_cnn)
    return p


def _search_strategies() -> list[str]:
    from .search import STRATEGIES

    return list(STRATEGIES)


def _plugins(argv) -> list[str]:
    """The ``--plugin`` modules in ``argv``, read before the full parser is built so that
    ``--help`` lists their methods."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    return pre.parse_known_args(argv)[0].plugin


def main(argv=None) -> int:
    from .paths import HOME_ENV
    from .plugins import load_plugins

    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), "hashbench")
    try:
        load_plugins(_plugins(argv))  # before any work: a broken plugin is one line, exit 2
    except InputError as e:
        print(f"hashbench {command}: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    home = os.environ.get(HOME_ENV)
    try:
        if getattr(args, "workdir", None):
            _set_workdir(args.workdir)
        return args.func(args)
    except InputError as e:
        print(f"hashbench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except CellsFailed as e:  # a cluster's cells that failed for good, after the others were written
        print(f"hashbench {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hashbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hashbench datasets | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:  # --workdir holds for this command only (main may be called again in one process)
        if home is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = home


if __name__ == "__main__":
    sys.exit(main())
