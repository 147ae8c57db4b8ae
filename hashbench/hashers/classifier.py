"""The classifier baseline of Sablayrolles, Douze, Usunier, Jegou ("How should we evaluate
supervised hashing?", ICASSP 2017): each image's code is a fixed codeword of the class a
plain classifier predicts for it. Under a protocol whose queries come from the training
classes this already reaches most of what supervised hashing reaches, which is the point
of carrying it in every supervised table.

Its input is the CNN-cls classifier's logits, the ``cnn-cls-logits`` features (the 10
outputs of the network ``hashbench train-cnn cls`` trains, stored and keyed by the model
file's SHA-256 like the ``cnn-cls`` features): the classifier is a feature extractor
here, and the hasher only maps ``argmax`` to a codeword. So the network runs once per
dataset, not once per code length, and the model file is keyed by content through the
features (the hasher reads no file itself, so it declares no ``model_file_params``).

Codewords (:func:`hashbench.codewords.class_codewords`): class c gets row c of [H; -H] for
a Hadamard matrix H of order n_bits (12, 24, 32 and 48 all have one): every two classes
differ in exactly n_bits / 2 bits, so the code imposes no order among the other classes and
a radius-2 lookup returns exactly the predicted class. Lengths without a Hadamard matrix
(or more than 2 n_bits classes) get seeded random codewords, the best of 100 draws by
minimum distance. The paper's own code assignment is not reproduced here (not checked).
"""

from typing import ClassVar

import numpy as np

from ..codewords import class_codewords
from ..errors import InputError
from .base import Hasher, register


@register("classifier")
class ClassifierCodes(Hasher):
    """Codeword of the predicted class (argmax of the input's columns, the classifier's
    logits); ``y`` is (n,) class ids or (n, c) multi-hot labels, checked against the number
    of classes the classifier has (one per column), nothing is learned from them.

    Parameters
    ----------
    n_bits : int, default 12
        Code length.
    seed : int, default 0
        Seed of the random codewords of lengths without a Hadamard matrix.

    Attributes
    ----------
    codewords_ : ndarray of shape (n_classes, n_bits), int8
        +-1, row c the code of class c.

    References
    ----------
    A. Sablayrolles, M. Douze, N. Usunier and H. Jégou, "How should we evaluate supervised
    hashing?", ICASSP 2017.
    """

    label = "Classifier codes"
    supervised = True
    fast_params: ClassVar[dict] = {"n_bits": 8}

    def __init__(self, n_bits: int = 12, seed: int = 0):
        self.n_bits = n_bits
        self.seed = seed

    def _fit(self, X, y):
        n_classes = X.shape[1]
        known = y.shape[1] if y.ndim == 2 else int(y.max()) + 1
        if known > n_classes:
            raise InputError(f"X: {n_classes} columns (classifier outputs) but the labels name {known} classes; "
                             "the input must be the classifier's logits, e.g. features cnn-cls-logits")
        self.codewords_ = class_codewords(n_classes, int(self.n_bits), int(self.seed))

    def _project(self, X) -> np.ndarray:
        return self.codewords_[X.argmax(axis=1)].astype(np.float64)
