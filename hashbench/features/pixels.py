"""Raw pixels as features: the baseline a learned representation has to beat, and a cheap
extractor for tests and smoke runs."""

import numpy as np

from .base import Extractor, register_extractor


@register_extractor("pixels")
class Pixels(Extractor):
    """float32 ``(n, H * W * 3)``: the RGB values 0-255, row-major, channels interleaved
    (no parameters)."""

    def _extract(self, images: np.ndarray, bar) -> np.ndarray:
        X = images.reshape(len(images), -1).astype(np.float32)
        bar.update(len(images))
        return X
