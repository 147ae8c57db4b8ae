"""Feature extractors by name and the on-disk feature store.

``get_extractor(name, **params)`` builds one (``gist``, ``pixels``; the DSH issue registers
``cnn-cls`` and ``cnn-ours``); ``FeatureStore(root).get(dataset, extractor)`` returns its
matrix for every image of a dataset, computing and storing it when missing or stale.
"""

from .base import EXTRACTORS, Extractor, check_images, format_param, get_extractor, parse_param, register_extractor
from .store import FeatureStore, images_fingerprint
from . import cnn, gist, pixels  # noqa: F401,E402  (registers cnn-cls, cnn-cls-logits, cnn-ours, gist, pixels)

__all__ = [
    "EXTRACTORS", "Extractor", "FeatureStore", "check_images", "format_param", "get_extractor",
    "images_fingerprint", "parse_param", "register_extractor",
]
