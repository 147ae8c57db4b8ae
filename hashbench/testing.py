"""The conformance checker for authors of hashing methods.

``check_hasher(hasher)`` fits the hasher on small seeded data of its ``input_kind`` and
checks what hashbench's runner relies on; ``parametrize_with_hashers()`` is the pytest
decorator (in the spirit of scikit-learn's ``parametrize_with_checks``) that runs it over
every registered method, built-ins and plugins alike::

    from hashbench.testing import check_hasher, parametrize_with_hashers

    def test_mine():
        check_hasher(PCARR(n_bits=8))

    @parametrize_with_hashers()
    def test_every_method(hasher):
        check_hasher(hasher)

A hasher may declare ``fast_params`` (a dict of parameters, e.g. fewer anchors or a short
training schedule) that make it quick on the checker's tiny data; ``parametrize_with_hashers``
builds each method with them.

What is checked (an ``AssertionError`` names the first failure):

- the declarations agree with the parameters (``hashers.base.check_declarations``);
- ``clone`` keeps every parameter, and ``fit`` returns the hasher itself;
- same parameters and seed -> same codes (on a clone);
- ``project`` is real-valued ``(n, n_bits)``, ``transform`` equals it, and ``encode`` is the
  packed format of :mod:`hashbench.codes` holding the signs of ``project`` (0 -> bit 1),
  padding bits zero;
- ``n_features_in_`` is set for feature hashers;
- bad input is a one-line :class:`InputError`: NaN, inf, 1-D input and a wrong feature
  count (features), wrong dtype and shape (images), no labels for a supervised method, and
  bad ``n_bits`` / ``seed``;
- a method that ``uses_labelled_subset`` draws exactly ``n_labelled`` sorted distinct rows,
  the same for the same seed and other ones for another seed, and all rows when
  ``n_labelled`` exceeds the training set.
"""

import numpy as np
from sklearn.base import clone

from .codes import n_words, pack, sign, unpack
from .errors import InputError
from .hashers.base import HASHERS, check_declarations

N_SAMPLES = 120
N_CLASSES = 4


def make_data(hasher, n: int = N_SAMPLES, seed: int = 0):
    """(X, y) of the hasher's input kind: clustered float features with at least 2 x n_bits
    dimensions, or 8x8 RGB uint8 images whose class shows in their brightness."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % N_CLASSES
    if hasher.input_kind == "images":
        base = (40 + 50 * y)[:, None, None, None]
        images = np.clip(base + rng.normal(0, 20, (n, 8, 8, 3)), 0, 255).astype(np.uint8)
        return images, y
    d = max(16, 2 * int(hasher.n_bits))
    centres = rng.normal(0, 4, (N_CLASSES, d))
    return centres[y] + rng.normal(0, 1, (n, d)), y


def _one_line_error(action, what: str):
    try:
        action()
    except InputError as e:
        assert "\n" not in str(e), f"{what}: the InputError spans several lines: {e!s}"
        return
    raise AssertionError(f"{what}: no InputError")


def check_hasher(hasher, X=None, y=None) -> None:
    """Run every check on ``hasher`` (unfitted; left unfitted). ``X, y`` default to
    :func:`make_data`."""
    cls = type(hasher)
    check_declarations(cls)
    if X is None:
        X, y = make_data(hasher)
    y_fit = y if hasher.supervised else None
    params = hasher.get_params(deep=False)
    twin = clone(hasher)
    assert twin.get_params(deep=False).keys() == params.keys(), "clone changed the parameter names"

    fitted = clone(hasher)
    assert fitted.fit(X, y_fit) is fitted, "fit must return self"
    k = int(fitted.n_bits)
    if hasher.input_kind == "features":
        assert fitted.n_features_in_ == X.shape[1], "n_features_in_ is not the training feature count"

    # projections, codes, the one sign rule, the packed format
    P = np.asarray(fitted.project(X))
    assert P.shape == (len(X), k) and np.issubdtype(P.dtype, np.floating), f"project gave {P.dtype} {P.shape}"
    np.testing.assert_array_equal(np.asarray(fitted.transform(X)), P, err_msg="transform differs from project")
    codes = fitted.encode(X)
    assert codes.dtype == np.uint64 and codes.shape == (len(X), n_words(k)), f"encode gave {codes.dtype} {codes.shape}"
    assert codes.flags.c_contiguous, "codes are not C-contiguous"
    np.testing.assert_array_equal(codes, pack(sign(P)), err_msg="encode is not the signs of project (0 -> 1)")
    np.testing.assert_array_equal(pack(unpack(codes, k)), codes, err_msg="padding bits past n_bits are set")

    # seeds: same seed, same codes
    again = clone(hasher).fit(X, y_fit).encode(X)
    np.testing.assert_array_equal(again, codes, err_msg="two fits with one seed gave different codes")

    # one-line errors
    if hasher.input_kind == "features":
        bad_nan, bad_inf = X.astype(np.float64).copy(), X.astype(np.float64).copy()
        bad_nan[1, 0], bad_inf[2, 1] = np.nan, np.inf
        _one_line_error(lambda: clone(hasher).fit(bad_nan, y_fit), "fit on NaN")
        _one_line_error(lambda: clone(hasher).fit(bad_inf, y_fit), "fit on inf")
        _one_line_error(lambda: clone(hasher).fit(X[0], y_fit), "fit on 1-D input")
        _one_line_error(lambda: fitted.encode(X[:, :-1]), "encode with a wrong feature count")
        _one_line_error(lambda: fitted.encode(bad_nan), "encode of NaN")
    else:
        _one_line_error(lambda: clone(hasher).fit(X.astype(np.float32), y_fit), "fit on float images")
        _one_line_error(lambda: clone(hasher).fit(X[:, :, :-1], y_fit), "fit on non-square images")
        _one_line_error(lambda: fitted.encode(X[:, :-2, :-2]), "encode of images of another size")
    if hasher.supervised:
        _one_line_error(lambda: clone(hasher).fit(X, None), "a supervised fit without labels")
    for bad in ({"n_bits": 0}, {"n_bits": True}, {"seed": -1}, {"seed": 1.5}):
        _one_line_error(lambda bad=bad: clone(hasher).set_params(**bad).fit(X, y_fit), f"fit with {bad}")

    if hasher.uses_labelled_subset:
        _check_labelled_subset(hasher, X, y)


def _check_labelled_subset(hasher, X, y) -> None:
    n = len(X)
    part = n // 2

    def drawn(seed, n_labelled):
        return clone(hasher).set_params(seed=seed, n_labelled=n_labelled).fit(X, y).labelled_index_

    a = drawn(0, part)
    assert a.size == part and np.all(np.diff(a) > 0) and a.min() >= 0 and a.max() < n, \
        "labelled_index_ is not n_labelled sorted distinct rows"
    np.testing.assert_array_equal(drawn(0, part), a, err_msg="the labelled subset is not fixed by the seed")
    assert not np.array_equal(drawn(1, part), a), "another seed drew the same labelled subset"
    np.testing.assert_array_equal(drawn(0, n + 10), np.arange(n), err_msg="n_labelled > n must take every row")


def hashers_to_check(names=None) -> list:
    """An instance of each method in ``names``, built with its ``fast_params``. Default: every
    method the CLI offers, i.e. the built-ins, installed plugins (entry points, loaded here) and
    ``--plugin`` modules loaded so far; classes registered by merely importing some module (a
    test's helper) are left out."""
    from .hashers.base import ORIGINS
    from .plugins import load_entry_points

    if names is None:
        load_entry_points()
        names = [n for n in HASHERS if not ORIGINS[n].startswith("module ")]
    return [HASHERS[n](**getattr(HASHERS[n], "fast_params", {})) for n in sorted(names)]


def parametrize_with_hashers(names=None):
    """``pytest.mark.parametrize("hasher", ...)`` over :func:`hashers_to_check`, one test id per method."""
    import pytest

    hashers = hashers_to_check(names)
    return pytest.mark.parametrize("hasher", hashers, ids=[h.name for h in hashers])
