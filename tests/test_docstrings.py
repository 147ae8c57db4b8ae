"""The public estimators and extractors document themselves in numpydoc sections: every
constructor parameter under Parameters, every learned attribute under Attributes (hashers),
and the source under References."""

import inspect
import re

import pytest

from hashbench.features.base import EXTRACTORS
from hashbench.hashers import HASHERS
from hashbench.hashers.base import ORIGINS


def _section(doc: str, title: str) -> str:
    """The text of a numpydoc section ('' when absent)."""
    m = re.search(rf"^\s*{title}\n\s*-{{{len(title)}}}\n(.*?)(?=^\s*\w[\w ]*\n\s*-+\n|\Z)", doc, re.S | re.M)
    return m.group(1) if m else ""


def _documented(section: str) -> set[str]:
    return {n for line in section.splitlines() for n in re.findall(r"^\s*(\w+)(?: :|,|$)", line)} | set(
        re.findall(r"(\w+_)(?:,|$)", section))


def _params(cls) -> list[str]:
    return [n for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize("name", sorted(n for n in HASHERS if ORIGINS.get(n) == "built-in"))
def test_hasher_docstring_has_parameters_attributes_references(name):
    cls = HASHERS[name]
    doc = inspect.getdoc(cls)
    assert set(_params(cls)) <= _documented(_section(doc, "Parameters")), name
    assert _section(doc, "Attributes").strip(), name
    assert _section(doc, "References").strip(), name


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_extractor_docstring_has_its_parameters(name):
    cls = EXTRACTORS[name]
    doc = inspect.getdoc(cls)
    if _params(cls):
        assert set(_params(cls)) <= _documented(_section(doc, "Parameters")), name
        assert _section(doc, "References").strip(), name


def test_the_section_reader_can_fail():
    doc = "Summary.\n\nParameters\n----------\nn_bits : int\n    Bits.\n\nReferences\n----------\nA paper.\n"
    assert _documented(_section(doc, "Parameters")) == {"n_bits"}
    assert _section(doc, "Attributes") == ""
