"""The Hasher contract: hashbench's own checker over every registered method, and
scikit-learn's estimator checks over the feature hashers."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from hashbench.hashers.itq import CCAITQ, ITQ
from hashbench.hashers.ksh import KSH
from hashbench.hashers.lsh import LSH
from hashbench.hashers.pcah import PCAH
from hashbench.hashers.sdh import SDH
from hashbench.hashers.sh import SH
from hashbench.testing import check_hasher, parametrize_with_hashers


@parametrize_with_hashers()
def test_every_registered_hasher_passes_check_hasher(hasher):
    check_hasher(hasher)


def _expected_failures(estimator) -> dict:
    """The checks a hasher fails on purpose, each with the reason."""
    if not estimator.supervised:
        return {}
    return {
        # fits on object arrays with string class labels and wants sklearn's "Unknown label
        # type" wording; hashbench's labels are integer class ids or multi-hot rows
        # (labels.check_labels, shared with the metrics), and other labels are refused with
        # its own one-line InputError naming y and the dtype
        "check_dtype_object": "labels are integer class ids or multi-hot; string labels are refused",
    }


# sklearn's checks use as few as 1 feature and 10 samples: bit lengths and anchors that fit them.
# The classifier baseline is not among them: its input is a classifier's logits, one column per
# class, and it refuses labels naming more classes than columns, which these checks draw freely.
@parametrize_with_checks([LSH(n_bits=4), ITQ(n_bits=1), CCAITQ(n_bits=1), KSH(n_bits=4, n_anchors=5, n_labelled=None),
                          PCAH(n_bits=1), SH(n_bits=4), SDH(n_bits=4, n_anchors=5)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_a_hasher_is_a_step_of_a_sklearn_pipeline():
    """``make_pipeline(StandardScaler(), KSH())``: the pipeline's transform is KSH's projection
    of the standardised features, and its signs are KSH's codes."""
    import numpy as np
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hashbench.codes import pack, sign
    from hashbench.testing import make_data

    X, y = make_data(KSH(n_bits=8))
    X = X * np.linspace(1, 50, X.shape[1])  # columns on very different scales
    pipe = make_pipeline(StandardScaler(), KSH(n_bits=8, n_anchors=20)).fit(X, y)
    Z = (X - X.mean(0)) / X.std(0)
    by_hand = KSH(n_bits=8, n_anchors=20).fit(Z, y)
    np.testing.assert_allclose(pipe.transform(X), by_hand.project(Z), atol=1e-9)
    np.testing.assert_array_equal(pack(sign(pipe.transform(X))), by_hand.encode(Z))
    assert pipe[-1].n_features_in_ == X.shape[1]


def test_sklearn_input_errors_are_one_line_input_errors():
    import numpy as np
    import scipy.sparse

    from hashbench.errors import InputError

    X = np.random.default_rng(0).normal(size=(30, 5))
    h = LSH(n_bits=4).fit(X)
    for bad, word in [(X[0], "Expected 2D array"), (X[:, :4], "X has 4 features, but LSH is expecting 5"),
                      (scipy.sparse.csr_matrix(X), "Sparse"), (X + 1j, "Complex")]:
        with pytest.raises(InputError, match=word) as e:
            h.encode(bad)
        assert "\n" not in str(e.value)


def test_the_runner_reads_declarations_not_parameter_names():
    """A method with parameters named ``checkpoint`` and ``eval_set``-taking fit but no such
    declarations is left alone: no model file is forced on it, no held-out set passed."""
    import numpy as np

    from hashbench.experiment import fit_cell, make_cell, prepare
    from hashbench.hashers import HASHERS, register

    @register("test-own-checkpoint")
    class OwnCheckpoint(LSH):
        def __init__(self, n_bits=8, seed=0, checkpoint=None):
            super().__init__(n_bits, seed)
            self.checkpoint = checkpoint

        def _fit(self, X, y, eval_set=None):
            assert eval_set is None
            super()._fit(X, y)

    try:
        cell = make_cell("digits", "digits-dsh", "pixels", "test-own-checkpoint", 8, 0)
        ds, split, hasher, X = prepare(cell)
        assert hasher.checkpoint is None
        fit_cell(ds, split, hasher, X)
        assert hasher.encode(X[:3]).shape == (3, 1) and np.isfinite(hasher.project(X[:3])).all()
    finally:
        HASHERS.pop("test-own-checkpoint")


def test_declarations_must_match_parameters():
    from hashbench.hashers import Hasher
    from hashbench.hashers.base import check_declarations

    class NoSubsetParam(Hasher):
        supervised = uses_labelled_subset = True

        def __init__(self, n_bits=8, seed=0):
            self.n_bits, self.seed = n_bits, seed

    with pytest.raises(TypeError, match="declares uses_labelled_subset but has no 'n_labelled' parameter"):
        check_declarations(NoSubsetParam)
