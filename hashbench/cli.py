"""The ``hashbench`` command: argparse front end only (parse, call, print).

Each subcommand is a ``_cmd_<name>(args)`` function plus its parser in ``build_parser``.
User errors (:class:`InputError`) print one line and exit with code 2, no traceback.
"""

import argparse
import json
import sys

import numpy as np

from .errors import InputError


def _load_npy(path: str, arg: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{arg}: no such file: {path}") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{arg}: cannot read {path} as a .npy array ({e})") from None


def _codes_from_array(a: np.ndarray, bits: int | None, arg: str):
    """(packed uint64 codes, n_bits) from {0,1}/+-1 (n, k) or packed uint8 (n, ceil(k/8))."""
    from .codes import pack, pack_bytes

    if a.ndim != 2:
        raise InputError(f"{arg}: expected a 2-D (n, bits) array, got shape {a.shape}")
    if a.shape[0] == 0:
        raise InputError(f"{arg}: empty array")
    if bits is not None and a.dtype == np.uint8 and a.shape[1] != bits:
        return pack_bytes(a, bits, arg), bits
    if bits is not None and a.shape[1] != bits:
        raise InputError(f"{arg}: --bits {bits} does not fit an array of {a.shape[1]} columns")
    return pack(a, arg), a.shape[1]


def _cmd_evaluate(args) -> int:
    from .labels import check_labels
    from .metrics import evaluate

    q, kq = _codes_from_array(_load_npy(args.query_codes, "--query-codes"), args.bits, "--query-codes")
    d, kd = _codes_from_array(_load_npy(args.db_codes, "--db-codes"), args.bits, "--db-codes")
    if kq != kd:
        raise InputError(f"--query-codes has {kq} bits but --db-codes has {kd}")
    ql = check_labels(_load_npy(args.query_labels, "--query-labels"), q.shape[0], "--query-labels")
    dl = check_labels(_load_npy(args.db_labels, "--db-labels"), d.shape[0], "--db-labels")
    if args.radius < 0:
        raise InputError(f"--radius must be >= 0, got {args.radius}")
    if args.topk is not None and args.topk <= 0:
        raise InputError(f"--topk must be positive, got {args.topk}")
    res = evaluate(q, d, ql, dl, n_bits=kq, radius=args.radius, topk=args.topk)
    if args.json:
        print(json.dumps(res, indent=None))
    else:
        from .metrics import format_report

        print(format_report(res))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="hashbench", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"hashbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("evaluate", help="score codes of any method under the hashbench metrics")
    e.add_argument("--query-codes", required=True, help=".npy (n, k) {0,1} or +-1, or packed uint8 with --bits")
    e.add_argument("--db-codes", required=True, help=".npy database codes, same format as the queries")
    e.add_argument("--query-labels", required=True, help=".npy (n,) class ids or (n, c) multi-hot")
    e.add_argument("--db-labels", required=True, help=".npy database labels")
    e.add_argument("--bits", type=int, help="code length (needed for packed uint8 codes)")
    e.add_argument("--radius", type=int, default=2, help="Hamming radius for precision (default 2)")
    e.add_argument("--topk", type=int, help="also report mAP@k and precision@k")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_cmd_evaluate)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as e:
        print(f"hashbench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hashbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
