"""Feature extractors by name and the on-disk feature store.

``get_extractor(name, **params)`` builds one (``gist``, ``pixels``, ``cnn-cls``,
``cnn-ours``); ``FeatureStore(root).get(dataset, extractor)`` returns its
matrix for every image of a dataset, computing and storing it when missing or stale.
"""

from . import cnn, gist, pixels  # noqa: F401  (registers cnn-cls, cnn-cls-logits, cnn-ours, gist, pixels)
from .base import EXTRACTORS, Extractor, check_images, format_param, get_extractor, parse_param, register_extractor
from .store import FeatureStore, images_fingerprint

__all__ = [
    "EXTRACTORS", "Extractor", "FeatureStore", "check_images", "format_param", "get_extractor",
    "images_fingerprint", "parse_param", "register_extractor",
]
