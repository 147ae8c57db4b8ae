"""The offline default: scikit-learn's bundled digits (the UCI optical digits test set),
1,797 real 8x8 images of handwritten 0-9, so ``hashbench run`` works on any machine.

Pixels are 0-16 grey levels; they are scaled to 0-255 as ``(v * 255 + 8) // 16`` (rounded
to nearest, 16 -> 255) and replicated to three channels so every extractor sees the same
uint8 RGB format as CIFAR-10. The dataset has no official train/test split, so
``train_mask`` is all True and the digits protocols draw seeded held-out sets.
"""

import numpy as np

from .base import Dataset


def read() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    grey = (d.images.astype(np.int64) * 255 + 8) // 16
    images = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=3)
    names = tuple(str(int(t)) for t in d.target_names)
    n = len(images)
    return Dataset("digits", images, d.target.astype(np.int64), names, np.ones(n, bool),
                   "scikit-learn load_digits (bundled)")
