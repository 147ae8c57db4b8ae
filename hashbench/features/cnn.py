"""CNN features of supplementary Table 4: the 500-D activations of the first fully connected
layer (after its ReLU) of a trained network of the DSH architecture, L2-normalised.

``cnn-ours``: a trained 12-bit DSH model; ``cnn-cls``: the same layers trained as a 10-way
softmax classifier (the paper's reached 74.54% test accuracy). Train them with
``hashbench train-cnn dsh --bits 12 --out runs/models/dsh12-s0.pt`` and
``hashbench train-cnn cls --out runs/models/cnn-cls-s0.pt`` (the default ``model`` paths, in
the working folder).
The store key holds the model file's sha256, so features of a retrained model are never
mistaken for the old ones.
"""

import hashlib
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..paths import in_workdir
from .base import Extractor, register_extractor


class _CNNFeatures(Extractor):
    """A feature vector that is all zero (every unit inactive) stays zero rather than
    becoming NaN.

    Parameters
    ----------
    model : str or None, default None
        A saved state dict (``hashbench.nets.save_state``); None: the default model path in
        the working folder. Its sha256 is part of the store key.
    device : str, default "auto"
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...; not part of the key.

    References
    ----------
    H. Liu, R. Wang, S. Shan and X. Chen, "Deep supervised hashing for fast image
    retrieval", CVPR 2016, supplementary Table 4.
    """

    default_model: str
    train_hint: str
    output = "features"  # what nets.apply returns: the FC-500 layer, or "outputs" (logits)
    normalise = True

    model_file_params = ("model",)

    def __init__(self, model: str | None = None, device: str = "auto"):
        self.model = model
        self.device = device

    def _path(self) -> Path:
        path = Path(self.model) if self.model is not None else in_workdir(self.default_model)
        if not path.is_file():
            raise InputError(f"{self.name} model: no such file {path}; train one with `{self.train_hint}`")
        return path

    def check_params(self) -> None:
        """The model file exists and reads as a DSH network (refused now, not after the
        store announced its computation)."""
        from .. import nets

        nets.load_state(self._path())

    def key_params(self) -> dict:
        h = hashlib.sha256(self._path().read_bytes()).hexdigest()
        return {"model_sha256": h}

    def _extract(self, images: np.ndarray, bar) -> np.ndarray:
        from .. import nets

        net = nets.DSHNet.from_state_dict(nets.load_state(self._path()))
        if tuple(net.mean.shape) != images.shape[1:]:
            raise InputError(f"images: the {self.name} model takes {tuple(net.mean.shape)} images, "
                             f"got {images.shape[1:]}")
        out = []
        for s in range(0, len(images), 1000):
            out.append(nets.apply(net, images[s : s + 1000], self.output, device=self.device))
            bar.update(len(out[-1]))
        X = np.concatenate(out).astype(np.float32)
        if not self.normalise:
            return X
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


@register_extractor("cnn-ours")
class CNNOurs(_CNNFeatures):
    __doc__ = "FC-500 features of a trained 12-bit DSH model (Table 4, CNN-ours). " + _CNNFeatures.__doc__
    default_model = "runs/models/dsh12-s0.pt"
    train_hint = "hashbench train-cnn dsh --bits 12 --out runs/models/dsh12-s0.pt"


@register_extractor("cnn-cls")
class CNNCls(_CNNFeatures):
    __doc__ = "FC-500 features of the CNN-cls classifier (Table 4, CNN-cls). " + _CNNFeatures.__doc__
    default_model = "runs/models/cnn-cls-s0.pt"
    train_hint = "hashbench train-cnn cls --out runs/models/cnn-cls-s0.pt"


@register_extractor("cnn-cls-logits")
class CNNClsLogits(CNNCls):
    """The CNN-cls classifier's outputs (one logit per class, not normalised): the input of the
    ``classifier`` baseline (:mod:`hashbench.hashers.classifier`).

    Parameters
    ----------
    model : str or None, default None
        As ``cnn-cls``.
    device : str, default "auto"
        As ``cnn-cls``.

    References
    ----------
    A. Sablayrolles, M. Douze, N. Usunier and H. Jégou, "How should we evaluate supervised
    hashing?", ICASSP 2017.
    """

    output = "outputs"
    normalise = False
