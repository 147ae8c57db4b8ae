"""Label helpers for losses beyond :func:`base.similarity`: class ids as multi-hot rows, and
the similarity of two different label sets (HashNet pairs one half of a batch with the other)."""

import torch


def multi_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """float (B, C) rows: one-hot for int64 class ids (B,), the rows themselves for (B, C)."""
    if labels.ndim == 2:
        return labels.float()
    return torch.nn.functional.one_hot(labels.long(), n_classes).float()


def cross_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """float (len(a), len(b)) s_ij in {0, 1}: 1 when a_i and b_j share a label (same class, or
    at least one common label of multi-hot rows), the rule of :func:`base.similarity`."""
    if a.ndim == 1:
        return (a[:, None] == b[None, :]).float()
    return ((a.float() @ b.float().T) > 0).float()
