"""Parameter constraints as data, and the one function that checks a value against them.

A class declares ``_parameter_constraints = {"n_bits": [Interval(int, 1, 4096)], "relax":
[Options(None, "sigmoid")], ...}`` (the idea of scikit-learn's private
``_parameter_constraints``, written here so that hashbench does not lean on a private API);
each list holds the alternatives a value may satisfy. ``None`` in the list allows None.
Hashers and extractors have their declared constraints checked by their base class before
any work, so no method checks its own parameters by hand; the CLI and the experiment runner
check their own integers (seeds, job counts) with :func:`check`.

Bools are refused where a number is asked for: ``True`` is an ``int`` to Python but never a
bit length or a seed to a user.
"""

import math
import numbers
import re

import numpy as np

from .errors import InputError


class Constraint:
    """One allowed set of values: ``accepts(value)`` and a phrase for error messages."""

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return (isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


class Interval(Constraint):
    """Numbers of ``kind`` (``int`` or ``float``; a float interval also takes ints) within
    [low, high] (``closed="both"``), or with an open end (``"left"``, ``"right"``, ``"neither"``
    name the closed ends). None for an end: unbounded. NaN and inf are refused."""

    def __init__(self, kind, low=None, high=None, closed: str = "both"):
        if kind not in (int, float):
            raise TypeError("Interval kind must be int or float")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be both, left, right or neither, got {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value) -> bool:
        if not (_is_int(value) if self.kind is int else _is_real(value)):
            return False
        low_open, high_open = self.closed in ("right", "neither"), self.closed in ("left", "neither")
        if self.low is not None and (value < self.low or (value == self.low and low_open)):
            return False
        return not (self.high is not None and (value > self.high or (value == self.high and high_open)))

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        lo_in, hi_in = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            return f"{what} in {'[' if lo_in else '('}{self.low}, {self.high}{']' if hi_in else ')'}"
        if self.low is not None:
            return f"{what} {'>=' if lo_in else '>'} {self.low}"
        if self.high is not None:
            return f"{what} {'<=' if hi_in else '<'} {self.high}"
        return what

    def __repr__(self):
        return f"Interval({self.kind.__name__}, {self.low}, {self.high}, closed={self.closed!r})"


class Options(Constraint):
    """One of the listed values (compared with ``==``, bools only equal to bools)."""

    def __init__(self, *values):
        self.values = values

    def accepts(self, value) -> bool:
        return any(value is v or (type(value) is type(v) and value == v) for v in self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def __repr__(self):
        return f"Options{self.values!r}"


class Pattern(Constraint):
    """A string matching a regular expression (whole string), e.g. ``paper:N``."""

    def __init__(self, regex: str, description: str):
        self.regex, self.description = re.compile(regex), description

    def accepts(self, value) -> bool:
        return isinstance(value, str) and self.regex.fullmatch(value) is not None

    def describe(self) -> str:
        return self.description

    def __repr__(self):
        return f"Pattern({self.regex.pattern!r})"


class Instance(Constraint):
    """An instance of a type (or tuple of types), e.g. ``Instance((str, os.PathLike), "a path")``."""

    def __init__(self, types, description: str):
        self.types, self.description = types, description

    def accepts(self, value) -> bool:
        return isinstance(value, self.types) and not (self.types is not bool and isinstance(value, bool))

    def describe(self) -> str:
        return self.description

    def __repr__(self):
        return f"Instance({self.description!r})"


class ListOf(Constraint):
    """A list or tuple of at least ``min_len`` items, each satisfying ``item``."""

    def __init__(self, item: Constraint, min_len: int = 1):
        self.item, self.min_len = item, min_len

    def accepts(self, value) -> bool:
        return (isinstance(value, (list, tuple)) and len(value) >= self.min_len
                and all(self.item.accepts(v) for v in value))

    def describe(self) -> str:
        return f"a list of at least {self.min_len} items, each {self.item.describe()}"

    def __repr__(self):
        return f"ListOf({self.item!r}, min_len={self.min_len})"


BOOL = Options(True, False)
SEED = Interval(int, 0, None)


def _as_list(constraints):
    return constraints if isinstance(constraints, (list, tuple)) else [constraints]


def describe(constraints) -> str:
    """The alternatives as one phrase: ``an integer >= 1 or None``."""
    words = ["None" if c is None else c.describe() for c in _as_list(constraints)]
    return " or ".join(words)


def check(value, name: str, constraints):
    """``value`` when it satisfies one of ``constraints`` (a Constraint, None, or a list of
    them), else an InputError ``NAME must be ...; got VALUE``. Integers come back as ``int``."""
    for c in _as_list(constraints):
        if (value is None and c is None) or (c is not None and c.accepts(value)):
            return int(value) if _is_int(value) else value
    raise InputError(f"{name} must be {describe(constraints)}, got {value!r}")


def check_params(params: dict, constraints: dict, owner: str = "") -> None:
    """Check every parameter in ``params`` that ``constraints`` names; ``owner`` prefixes
    the message (``ksh: n_anchors must be ...``)."""
    prefix = f"{owner}: " if owner else ""
    for name, allowed in constraints.items():
        if name in params:
            try:
                check(params[name], name, allowed)
            except InputError as e:
                raise InputError(prefix + str(e)) from None
