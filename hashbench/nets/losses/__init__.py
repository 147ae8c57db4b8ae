"""Deep hashing losses, one module each, registered by name in :data:`LOSSES`.

Adding a loss is one module here and a registration: subclass :class:`HashLoss`, decorate it
with ``@register_loss("name")``, and import the module below. Training
(:func:`hashbench.nets.train`), checkpoints, schedules and the runner take any registered loss
unchanged; :class:`hashbench.hashers.deep.DeepHasher` makes it a method (see its docstring).
"""

from . import csq, dpsh, dsh, greedyhash, hashnet, orthohash  # importing registers each
from .base import LOSSES, HashLoss, get_loss, register_loss, similarity
from .dsh import DSHLoss, dsh_loss

__all__ = ["LOSSES", "DSHLoss", "HashLoss", "csq", "dpsh", "dsh", "dsh_loss", "get_loss", "greedyhash", "hashnet",
           "orthohash", "register_loss", "similarity"]
