"""Figures from stored result rows (never from retraining): precision-recall curves and
precision within Hamming radius 2 against code length (the paper's Figure 6).

Each figure is written as PNG and PDF, atomically, with the non-interactive Agg backend.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_write  # noqa: E402

METHOD_LABELS = {"lsh": "LSH", "itq": "ITQ", "cca-itq": "CCA-ITQ", "ksh": "KSH", "dsh": "DSH"}


def label(row) -> str:
    """The legend text of a result row: method, and its features unless it takes images."""
    name = METHOD_LABELS.get(row["method"], row["method"])
    return name if row["features"] == "images" else f"{name} ({row['features']})"


def save(fig, stem) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf atomically; return both paths."""
    paths = []
    for ext in ("png", "pdf"):
        path = Path(f"{stem}.{ext}")
        with atomic_write(path) as f:
            fig.savefig(f, format=ext, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def pr_curves(ax, rows, title: str) -> None:
    """Precision at recall levels 0:0.05:1 over the Hamming ranking, one line per row."""
    for _, row in rows.iterrows():
        levels = json.loads(row["curves"])["pr_recall_levels"]
        ax.plot([p["recall"] for p in levels], [p["precision"] for p in levels], marker=".", label=label(row))
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def precision_vs_bits(ax, rows, title: str) -> None:
    """Mean precision within Hamming radius 2 against code length, one line per method."""
    for name, group in rows.groupby(rows.apply(label, axis=1), sort=False):
        group = group.groupby("bits")["precision_r2"].mean()
        ax.plot(group.index, group.values, marker="o", label=name)
    ax.set(xlabel="code length (bits)", ylabel="precision within Hamming radius 2", ylim=(0, 1), title=title)
    ax.set_xticks(sorted(rows["bits"].unique()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def figure6(rows, stem, pr_bits: int = 48) -> list[Path]:
    """Figure 6 for every protocol in ``rows``: (a) PR curves at ``pr_bits``, (b) precision
    within radius 2 against code length. One row of panels per protocol."""
    protocols = list(dict.fromkeys(rows["protocol"]))
    fig, axes = plt.subplots(len(protocols), 2, figsize=(11, 4.5 * len(protocols)), squeeze=False)
    for (ax_pr, ax_bits), protocol in zip(axes, protocols):
        part = rows[rows["protocol"] == protocol]
        dataset = part["dataset"].iloc[0]
        pr_curves(ax_pr, part[part["bits"] == pr_bits], f"(a) {dataset}, {protocol}: PR, {pr_bits} bits")
        precision_vs_bits(ax_bits, part, f"(b) {dataset}, {protocol}: precision within radius 2")
    fig.tight_layout()
    return save(fig, stem)
