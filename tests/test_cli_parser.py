"""The command line's shape: options shared through parent parsers, help generated from the
registries, old option spellings kept as hidden deprecated aliases."""

import re

import pytest

from hashbench import cli
from hashbench.datasets import DATASETS
from hashbench.features import EXTRACTORS
from hashbench.hashers import HASHERS
from hashbench.protocols import PROTOCOLS


def _help(capsys, monkeypatch, *command) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    return capsys.readouterr().out


def _subparsers(parser, path=()):
    """Every (command words, parser) below ``parser``."""
    for action in parser._actions:
        if getattr(action, "choices", None) and hasattr(action, "_name_parser_map"):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subparsers(sub, (*path, name))


def test_run_help_names_every_registered_method_extractor_dataset_and_protocol(capsys, monkeypatch):
    words = set(re.split(r"[\s,;()]+", _help(capsys, monkeypatch, "run")))
    for registry in (HASHERS, EXTRACTORS, DATASETS, PROTOCOLS):
        assert set(registry) <= words, set(registry) - words  # whole: no name broken at a hyphen


def test_shared_options_are_one_declaration():
    """--data-dir, --store, --budget and --n-labelled read the same on every
    command that takes them (download's --data-dir is a destination, said differently)."""
    seen = {}
    for path, parser in _subparsers(cli.build_parser()):
        for action in parser._actions:
            for flag in action.option_strings:
                if path == ("download",) and flag == "--data-dir":
                    continue
                seen.setdefault(flag, {}).setdefault((action.help, repr(action.default)), []).append(path)
    for flag in ("--data-dir", "--store", "--budget", "--n-labelled"):
        assert len(seen[flag]) == 1, (flag, seen[flag])
    commands = {" ".join(p) for v in seen["--data-dir"].values() for p in v}
    assert commands == {"evaluate", "datasets", "split export", "split import", "run", "reproduce", "show",
                        "features extract", "bench-search", "rescore", "train-cnn"}
    assert {" ".join(p) for v in seen["--budget"].values() for p in v} == {"reproduce", "show", "train-cnn"}


@pytest.mark.parametrize("argv, dest, value, old, new", [
    (["train-cnn", "dsh", "--out", "m.pt", "--schedule", "25"], "budget", "25", "--schedule", "--budget"),
    (["show", "--top", "5"], "topk", 5, "--top", "--topk"),
    (["bench-search", "--k", "7"], "topk", 7, "--k", "--topk"),
])
def test_old_spellings_still_parse_with_a_warning_and_stay_out_of_help(argv, dest, value, old, new, capsys,
                                                                       monkeypatch):
    args = cli.build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert f"{old} is deprecated, use {new}" in capsys.readouterr().err
    assert old not in _help(capsys, monkeypatch, *argv[:2 if argv[0] == "train-cnn" else 1]).replace(new, "")


def test_every_command_help_is_complete(capsys, monkeypatch):
    """Each command's --help shows every option it accepts but the deprecated spellings."""
    for path, parser in _subparsers(cli.build_parser()):
        if any(getattr(a, "_name_parser_map", None) for a in parser._actions):
            continue  # a command group: its help lists its commands
        text = _help(capsys, monkeypatch, *path)
        assert "--plugin" in text, path  # on every command
        for action in parser._actions:
            if action.help == "==SUPPRESS==":
                continue
            for flag in action.option_strings:
                assert flag in text, (path, flag)
